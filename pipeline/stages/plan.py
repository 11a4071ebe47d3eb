"""What a workflow run computes, from a validated config and its sessions sheet.

One table of result paths (:data:`PATHS`, Snakemake patterns: the rules' outputs and every target are
built from it) and :class:`Plan`: the cells each method trains on, the comparison groups' cells and
methods, the maze analysis, the inputs of the jobs that read many cells (as ``(embedding, prepared)``
pairs, never as lists that must line up) and the targets of ``rule all``. The workflow reads it
(workflow/rules/common.smk); a notebook can ask it what a config would compute::

    from pipeline.stages.config import load_config, load_sheet
    from pipeline.stages.plan import Plan

    config = load_config("config/config.yaml")
    plan = Plan(config, load_sheet(config["sessions"]))
    plan.method_cells("ner"), plan.group_methods("m1_simc"), len(plan.final_targets())
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import cached_property

import pandas as pd

from pipeline.stages.config import group_cells, maze_method_params, maze_sessions

#: Result paths as Snakemake patterns (``str.format`` fills them for one job): stores and model folders,
#: and the stems (``.scores.tsv``, ``.accuracy.tsv``, ``.provenance.json`` appended) or folders of the
#: tables and figures.
PATHS: dict[str, str] = {
    "ingest": "results/ingest/{session}.zarr",
    "prepared": "results/prepared/{session}.zarr",
    "embedding": "results/embeddings/{method}/{session}/{area}/seed{seed}.zarr",
    "model": "results/models/{method}/{session}/{area}/seed{seed}",
    "within": "results/decoding/within/{method}/seed{seed}",
    "cross": "results/decoding/cross/{group}/{method}/seed{seed}",
    "stats": "results/stats/{group}",
    "figures": "results/figures/{group}",
    "dynamics": "results/dynamics/{group}",
    "reproduction": "results/reproduction",
    "maze_prepared": "results/maze/prepared/{session}.zarr",
    "maze_embedding": "results/maze/embeddings/{method}/{session}/{subset}/seed{seed}.zarr",
    "maze_model": "results/maze/models/{method}/{session}/{subset}/seed{seed}",
    "maze_decoding": "results/maze/decoding/{method}/seed{seed}",
    "maze_figures": "results/maze/figures",
    "nwb": "results/nwb/{session}.nwb",
}
#: the figures of one comparison group besides its latent figures (``figures_group``'s outputs)
GROUP_FIGURES = ("matrix_velocity", "matrix_position", "matrix_direction", "accuracy_time", "blocks")


def draws_alignment_curve(alignments) -> bool:
    """Whether config ``decoding.alignments`` holds a variant of the new-session figure (``alignments.png``:
    :func:`pipeline.report.plots.plot_alignment_curve` draws label_free, label_free_consensus, few_shot_{k}
    and leak_free); with only ``paper``/``joint``/``none`` the figure has nothing to draw and is not made."""
    return any(
        a in ("label_free", "label_free_consensus", "leak_free") or a.startswith("few_shot_") for a in alignments
    )


#: the latent-dynamics analyses of one comparison group (config ``dynamics``): rule -> its tables
DYNAMICS_TABLES = {
    "similarity": ("similarity", "similarity_tests", "similarity_blocks"),
    "speed_accuracy": ("speed_accuracy", "speed_profiles"),
    "velocity_coverage": ("velocity_coverage",),
    "population": ("population",),
}


def path(kind: str, **fields) -> str:
    """One result path: ``PATHS[kind]`` filled with ``fields``."""
    return PATHS[kind].format(**fields)


class Plan:
    """The jobs a config implies for its sheet (``config`` validated, defaults filled).

    Args:
        config: the validated config (:func:`pipeline.stages.config.load_config`).
        sheet: the sessions sheet (:func:`pipeline.stages.config.load_sheet`), indexed by session id.
        source: the sheet's name for messages (default: ``config["sessions"]``).
    """

    def __init__(self, config: Mapping, sheet: pd.DataFrame, source: str | None = None):
        self.config, self.sheet = config, sheet
        self.source = source or str(config["sessions"])
        self.sessions: list[str] = list(sheet.index)
        # plain dicts for the per-job lookups (pandas .loc per call dominated DAG construction at scale)
        self._task = sheet["task"].to_dict()
        self._areas = sheet["area_list"].to_dict()
        self.methods: list[str] = [m for m, block in config["methods"].items() if block["enabled"]]
        self.seeds: list[int] = list(config["seeds"])
        self.maze_sessions: list[str] = maze_sessions(config, sheet, self.source)
        self.maze_subsets: list[str] = list(config["maze"]["subsets"]) if self.maze_sessions else []
        self.maze_methods: list[str] = list(config["maze"]["methods"]) if self.maze_subsets else []
        self.maze_params = {m: maze_method_params(config, m, "config") for m in self.maze_methods}

    # --- cells -----------------------------------------------------------------------------------
    def method_areas(self, method: str, session: str) -> list[str]:
        """Areas of ``session`` that ``method`` trains on (its ``areas``, default all; none when the
        session's task is not in its ``tasks``, e.g. dPCA needs the target directions of center-out)."""
        block = self.config["methods"][method]
        if self._task[session] not in block["tasks"]:
            return []
        return [a for a in self._areas[session] if block["areas"] is None or a in block["areas"]]

    def method_cells(self, method: str) -> list[tuple[str, str]]:
        """``(session, area)`` cells ``method`` is trained on, in sheet order."""
        return [(sid, area) for sid in self.sessions for area in self.method_areas(method, sid)]

    @cached_property
    def groups(self) -> dict[str, list[tuple[str, str]]]:
        """Comparison group -> its cells in matrix order. Groups that select no cell of this sheet are
        left out (``--configfile`` merges the demo's groups into another config's), with a note on
        stderr."""
        out = {}
        for name, selector in self.config["groups"].items():
            cells = group_cells(self.sheet, name, selector, self.source, required=False)
            if cells:
                out[name] = cells
            else:
                print(f"note: group {name} selects no cell of {self.source}; skipped", file=sys.stderr)
        return out

    def group_method_cells(self, group: str, method: str) -> list[tuple[str, str]]:
        """The cells of ``group`` that ``method`` is trained on, in matrix order."""
        trained = set(self.method_cells(method))
        return [c for c in self.groups[group] if c in trained]

    def group_methods(self, group: str) -> list[str]:
        """Enabled methods cross-decoded in ``group``: those with at least 2 trained cells in it."""
        wanted = self.config["groups"][group].get("methods") or self.methods
        return [m for m in self.methods if m in wanted and len(self.group_method_cells(group, m)) >= 2]

    # --- inputs of the jobs that read many cells -----------------------------------------------------
    def cell_pairs(self, method: str, cells, seed) -> list[tuple[str, str]]:
        """``(embedding store, prepared store)`` of each of ``method``'s ``cells``."""
        return [
            (path("embedding", method=method, session=sid, area=area, seed=seed), path("prepared", session=sid))
            for sid, area in cells
        ]

    def within_pairs(self, method: str, seed) -> list[tuple[str, str]]:
        return self.cell_pairs(method, self.method_cells(method), seed)

    def cross_pairs(self, group: str, method: str, seed) -> list[tuple[str, str]]:
        return self.cell_pairs(method, self.group_method_cells(group, method), seed)

    def maze_pairs(self, method: str, seed) -> list[tuple[str, str]]:
        """``(subset embedding, maze-prepared store)`` of ``method`` over every maze session x subset."""
        return [
            (
                path("maze_embedding", method=method, session=sid, subset=subset, seed=seed),
                path("maze_prepared", session=sid),
            )
            for sid in self.maze_sessions
            for subset in self.maze_subsets
        ]

    # --- targets -------------------------------------------------------------------------------------
    def embedding_targets(self) -> list[str]:
        """One embedding store per enabled method x session x area (from the sheet) x seed."""
        return [
            path("embedding", method=method, session=sid, area=area, seed=seed)
            for sid in self.sessions
            for method in self.methods
            for area in self.method_areas(method, sid)
            for seed in self.seeds
        ]

    def session_embeddings(self, session: str, kind: str = "embedding") -> list[str]:
        """The ``kind`` (``embedding`` store or ``model`` folder) of every enabled method, area and seed
        trained on ``session``, in the same order for both kinds (what its NWB export reads)."""
        return [
            path(kind, method=method, session=session, area=area, seed=seed)
            for method in self.methods
            for area in self.method_areas(method, session)
            for seed in self.seeds
        ]

    def within_tables(self, kind: str = "scores") -> list[str]:
        """The within-session ``kind`` tables (``scores`` or ``accuracy``) of every method and seed."""
        return [f"{path('within', method=m, seed=s)}.{kind}.tsv" for m in self.methods for s in self.seeds]

    def cross_tables(self, group: str, kind: str = "scores") -> list[str]:
        """The ``kind`` tables of ``group``: one per method cross-decoded in it and seed."""
        return [
            f"{path('cross', group=group, method=m, seed=s)}.{kind}.tsv"
            for m in self.group_methods(group)
            for s in self.seeds
        ]

    def group_figures(self, group: str) -> list[str]:
        folder = path("figures", group=group)
        figures = [f"{folder}/{name}.png" for name in GROUP_FIGURES]
        if draws_alignment_curve(self.config["decoding"]["alignments"]):
            figures.append(f"{folder}/alignments.png")
        figures += [f"{folder}/latents_{m}.png" for m in self.group_methods(group)]
        return figures + [f"{folder}/latents_3d.html"]  # every method's latents, interactive (rule latents_3d)

    def latents_3d_pairs(self, group: str) -> dict[str, list[tuple[str, str]]]:
        """method -> the ``(embedding, prepared)`` pairs of ``group``'s cells at the first seed, for every
        method cross-decoded in it: what the interactive 3-D latent page reads (the static latent figures read
        the same cells)."""
        return {m: self.cross_pairs(group, m, self.seeds[0]) for m in self.group_methods(group)}

    def dynamics_targets(self, group: str) -> list[str]:
        """The tables and figures of the latent-dynamics analyses of ``group`` (none when
        ``dynamics.enabled`` is false or no method is cross-decoded in it)."""
        if not self.config["dynamics"]["enabled"] or not self.group_methods(group):
            return []
        tables, figures = path("dynamics", group=group), path("figures", group=group)
        return [f"{tables}/{name}.tsv" for names in DYNAMICS_TABLES.values() for name in names] + [
            f"{figures}/{name}.png" for name in DYNAMICS_TABLES
        ]

    def group_cells_pairs(self, group: str) -> dict[str, list[tuple[str, str]]]:
        """``"{method}/seed{seed}"`` -> the ``(embedding, prepared)`` pairs of ``group``'s cells, for
        every method cross-decoded in it and every seed."""
        return {f"{m}/seed{s}": self.cross_pairs(group, m, s) for m in self.group_methods(group) for s in self.seeds}

    def population_cells(self, group: str) -> list[tuple[str, str, str]]:
        """``(session, area, prepared store)`` of every cell of ``group`` (the population analysis
        reads the recorded data, not an embedding)."""
        return [(sid, area, path("prepared", session=sid)) for sid, area in self.groups[group]]

    def maze_tables(self, seed=None) -> list[str]:
        """The maze score table of every maze method (and seed, or only ``seed``)."""
        seeds = self.seeds if seed is None else [seed]
        return [f"{path('maze_decoding', method=m, seed=s)}.scores.tsv" for m in self.maze_methods for s in seeds]

    def maze_targets(self) -> list[str]:
        """Score tables and figures of the maze analysis (empty when it is off or has no session)."""
        if not self.maze_methods:
            return []
        figures = PATHS["maze_figures"]
        latents = [f"{figures}/{sid}/latents.png" for sid in self.maze_sessions]
        return self.maze_tables() + [f"{figures}/scores.png"] + latents

    def final_targets(self) -> list[str]:
        """Everything ``rule all`` builds for the configured sessions."""
        targets = [path("prepared", session=sid) for sid in self.sessions] + self.embedding_targets()
        within = path("stats", group="within")
        targets += self.within_tables() + [f"{within}/tests.tsv", f"{path('figures', group='within')}/scores.png"]
        for group in self.groups:
            if self.group_methods(group):
                targets += [f"{path('stats', group=group)}/tests.tsv"] + self.group_figures(group)
                targets += self.dynamics_targets(group)
        if self.config["reproduction"]:
            targets.append(f"{PATHS['reproduction']}.md")
        if self.config["published_embeddings"]:
            targets.append("results/figures/published/alignments.png")
        if self.config["export_nwb"]["enabled"]:
            targets += [path("nwb", session=sid) for sid in self.sessions]
        return targets + self.maze_targets()

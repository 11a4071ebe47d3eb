# Shared helpers: config + sheet validation (defaults filled), wildcard constraints, targets,
# per-stage code fingerprints. The logic lives in the `pipeline` package; nothing here computes data.
import re
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)  # the `pipeline` package sits beside the Snakefile

from pipeline.config import (
    group_cells,
    load_sheet,
    maze_method_params,
    maze_preprocessing,
    maze_sessions,
    maze_subset,
    session_path,
    session_preprocessing,
    session_row,
    validate_config,
)
from pipeline.errors import InputError
from pipeline.methods import GPU_METHODS, METHODS
from pipeline.provenance import code_fingerprint

validate_config(config, source=", ".join(map(str, workflow.configfiles)) or "config")
SHEET = load_sheet(config["sessions"])
SESSIONS = list(SHEET.index)
# Plain dicts for the per-job lookups (pandas .loc per call dominated DAG construction at scale).
_TASK = SHEET["task"].to_dict()
_AREA_LIST = SHEET["area_list"].to_dict()
DATA_DIR = config["data_dir"].rstrip("/")
SIMULATED = config["simulation"]["enabled"]

if SIMULATED:
    for _sid, _row in SHEET.iterrows():
        if _row["format"] != "nwb" or _row["path"] != f"{_sid}.nwb":
            raise InputError(
                config["sessions"],
                f"{_sid}.path",
                f"simulated sessions must have format nwb and path {_sid}.nwb",
            )


ENABLED_METHODS = [m for m, block in config["methods"].items() if block["enabled"]]
SEEDS = config["seeds"]
# The maze analysis (workflow/rules/maze.smk): its sessions, trial subsets and methods.
MAZE_SESSIONS = maze_sessions(config, SHEET, config["sessions"])
MAZE_SUBSETS = list(config["maze"]["subsets"]) if MAZE_SESSIONS else []
MAZE_METHODS = list(config["maze"]["methods"]) if MAZE_SUBSETS else []
_MAZE_PARAMS = {m: maze_method_params(config, m, "config") for m in MAZE_METHODS}


wildcard_constraints:
    session="|".join(re.escape(s) for s in SESSIONS),
    method="|".join(re.escape(m) for m in config["methods"]),
    area="M1|PMd|S1",
    seed=r"\d+",
    group="|".join(re.escape(g) for g in config["groups"]) or "(?!)",
    subset="|".join(re.escape(s) for s in config["maze"]["subsets"]) or "(?!)",


# Code fingerprints (params: code). Each is derived from the imports of the rule's script: every
# package module it reaches (pipeline.provenance.import_closure), so that editing a module reruns
# exactly the jobs whose code imports it. Training adds the module of its {method} (the method
# registry imports it by name at run time).
_SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
_FINGERPRINTS = {}


def fingerprint(script, *modules):
    """Fingerprint of the package code workflow/scripts/{script}.py imports, plus ``modules``."""
    key = (script, *modules)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = code_fingerprint([_SCRIPTS / f"{script}.py", *modules])
    return _FINGERPRINTS[key]


def train_fingerprint(wildcards):
    """Fingerprint of the training script's code plus the module of {method}."""
    return fingerprint("train", METHODS[wildcards.method].split(":")[0])


def method_gpus(wildcards):
    """1 for methods that train on a GPU (gpu-tagged jobs), 0 for the CPU-only ones."""
    return int(wildcards.method in GPU_METHODS)


def method_params(wildcards):
    """Constructor arguments of {method} from the config (seed and device are added by the job)."""
    return config["methods"][wildcards.method]["params"]


def row(wildcards):
    """The sessions-sheet row of {session}, as plain JSON-serialisable values."""
    return session_row(SHEET, wildcards.session, config["sessions"])


def source_file(wildcards):
    """The recording file of {session} (sheet `path` under config `data_dir`)."""
    return str(session_path(row(wildcards), DATA_DIR))


def reader_options(wildcards):
    """Keyword options of the session's reader."""
    r = row(wildcards)
    if r["format"] == "nwb":
        return {
            "direction_units": config["readers"]["direction_units"],
            "require_behavior": config["readers"]["require_behavior"],
        }
    if r["format"] == "nermat":
        return {"trial_bins": session_preprocessing(config, r)["window_bins"]}
    return {}


def preprocessing(wildcards):
    """The preprocessing block with the session's sheet overrides applied."""
    return session_preprocessing(config, row(wildcards))


def method_areas(method, sid):
    """Areas of session {sid} that {method} trains on (its `areas`, default all; none when the
    session's task is not in its `tasks`, e.g. dPCA needs the target directions of center-out).
    """
    block = config["methods"][method]
    if _TASK[sid] not in block["tasks"]:
        return []
    return [a for a in _AREA_LIST[sid] if block["areas"] is None or a in block["areas"]]


def embedding_targets():
    """One embedding store per enabled method x session x area (from the sheet) x seed."""
    return [
        f"results/embeddings/{method}/{sid}/{area}/seed{seed}.zarr"
        for sid in SESSIONS
        for method in ENABLED_METHODS
        for area in method_areas(method, sid)
        for seed in SEEDS
    ]


def method_cells(method):
    """(session, area) cells that {method} is trained on, in sheet order."""
    return [(sid, area) for sid in SESSIONS for area in method_areas(method, sid)]


# Groups that select no cell of this sheet are skipped (--configfile merges the demo's groups
# into another config's), with a note on stderr.
GROUPS = {}
for _name, _sel in config["groups"].items():
    GROUPS[_name] = group_cells(SHEET, _name, _sel, config["sessions"], required=False)
    if not GROUPS[_name]:
        print(
            f"note: group {_name} selects no cell of {config['sessions']}; skipped",
            file=sys.stderr,
        )
        del GROUPS[_name]


def group_method_cells(group, method):
    """The cells of {group} that {method} is trained on, in matrix order."""
    trained = set(method_cells(method))
    return [c for c in GROUPS[group] if c in trained]


def group_methods(group):
    """Enabled methods cross-decoded in {group}: those with >= 2 trained cells in it."""
    wanted = config["groups"][group].get("methods") or ENABLED_METHODS
    return [
        m
        for m in ENABLED_METHODS
        if m in wanted and len(group_method_cells(group, m)) >= 2
    ]


def cell_inputs(method, cells, seed):
    """Embedding and prepared stores of {method}'s cells (same order)."""
    return {
        "embeddings": [
            f"results/embeddings/{method}/{sid}/{area}/seed{seed}.zarr"
            for sid, area in cells
        ],
        "prepared": [f"results/prepared/{sid}.zarr" for sid, _ in cells],
    }


def within_inputs(wildcards):
    return cell_inputs(wildcards.method, method_cells(wildcards.method), wildcards.seed)


def cross_inputs(wildcards):
    cells = group_method_cells(wildcards.group, wildcards.method)
    return cell_inputs(wildcards.method, cells, wildcards.seed)


def within_tables(kind="scores"):
    return expand(
        "results/decoding/within/{method}/seed{seed}.{kind}.tsv",
        kind=kind,
        method=ENABLED_METHODS,
        seed=SEEDS,
    )


def cross_tables(group, kind="scores"):
    return [
        f"results/decoding/cross/{group}/{method}/seed{seed}.{kind}.tsv"
        for method in group_methods(group)
        for seed in SEEDS
    ]


def group_figures(group):
    figs = [
        f"results/figures/{group}/matrix_{target}.png"
        for target in ("velocity", "position", "direction")
    ]
    figs += [
        f"results/figures/{group}/accuracy_time.png",
        f"results/figures/{group}/blocks.png",
    ]
    return figs + [
        f"results/figures/{group}/latents_{m}.png" for m in group_methods(group)
    ]


def maze_embeddings(method, seed):
    """Subset embeddings of {method} and seed over every maze session x subset."""
    return [
        f"results/maze/embeddings/{method}/{sid}/{subset}/seed{seed}.zarr"
        for sid in MAZE_SESSIONS
        for subset in MAZE_SUBSETS
    ]


def maze_targets():
    """Score tables and figures of the maze analysis (empty when it is off or has no session)."""
    if not MAZE_METHODS:
        return []
    return (
        expand(
            "results/maze/decoding/{method}/seed{seed}.scores.tsv",
            method=MAZE_METHODS,
            seed=SEEDS,
        )
        + ["results/maze/figures/scores.png"]
        + expand("results/maze/figures/{session}/latents.png", session=MAZE_SESSIONS)
    )


def final_targets():
    """Everything `rule all` builds for the configured sessions."""
    targets = (
        collect("results/prepared/{session}.zarr", session=SESSIONS)
        + embedding_targets()
        + within_tables()
        + ["results/stats/within/tests.tsv", "results/figures/within/scores.png"]
    )
    for group in GROUPS:
        if group_methods(group):
            targets += [f"results/stats/{group}/tests.tsv"] + group_figures(group)
    if config["reproduction"]:
        targets.append("results/reproduction.md")
    return targets + maze_targets()

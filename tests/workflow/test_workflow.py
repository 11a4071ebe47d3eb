"""The workflow itself: dry runs of the demo, paper and SLURM configurations, lint, formatting,
code fingerprints, and a real run of the demo (simulate -> ingest -> prepare for every session)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.embed.methods import METHODS
from pipeline.stages.config import load_sheet, session_row
from pipeline.stages.provenance import code_fingerprint, import_closure
from tests.support.paths import PAPER, ROOT, requires_real
from tests.support.workflow import DEMO_METHODS, DIMS, demo_cells, job_blocks, keyed, snakemake


def _job_counts(stdout: str) -> dict[str, int]:
    table = stdout[stdout.index("Job stats:") :] if "Job stats:" in stdout else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_dry_run_demo():
    proc = snakemake("-n", "--cores", "2", "--forceall")
    n = len(load_sheet(ROOT / "config/sessions.tsv"))
    counts = _job_counts(proc.stdout)
    assert n == 4 and counts["simulate"] == counts["ingest"] == counts["prepare"] == n


@requires_real
def test_dry_run_paper():
    proc = snakemake(
        "-n", "--cores", "2", "--configfile", "config/paper.yaml", "--config", f"data_dir={PAPER}", "--forceall"
    )
    counts = _job_counts(proc.stdout)
    assert counts["ingest"] == 7 and counts["prepare"] == 7 and "simulate" not in counts


def test_dry_run_slurm_profile():
    proc = snakemake("-n", "--workflow-profile", "profiles/slurm", "--forceall")
    assert "prepare" in _job_counts(proc.stdout)
    # the maze analysis's training jobs go to the GPU partition with one GPU each, like `train`'s
    maze = [
        (keyed(f["wildcards"]), keyed(f["resources"])) for rule, f in job_blocks(proc.stdout) if rule == "maze_train"
    ]
    assert len(maze) == 4 and {w["method"] for w, _ in maze} == {"ner", "cebra"}  # 2 subsets x 2 methods
    assert all(r["slurm_partition"] == "your_gpu_partition" and r["gpu"] == "1" for _, r in maze)


def test_lint_and_format():
    """`make lint`: ruff (lint and format) on the package, scripts, tests and benchmarks; Snakemake's
    linter and snakefmt on the rules."""
    proc = snakemake("--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for args in (["check", "."], ["format", "--check", "."]):
        ruff = [str(Path(sys.executable).with_name("ruff")), *args]
        proc = subprocess.run(ruff, cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, f"ruff {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    fmt = subprocess.run(
        [str(Path(sys.executable).with_name("snakefmt")), "--check", "workflow"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stderr


def _fingerprinted_rules():
    """(rule key -> fingerprint entries) as workflow/rules/common.smk builds them: each script; the
    training script with each method's module."""
    scripts = {path.stem: [path] for path in sorted((ROOT / "workflow/scripts").glob("*.py"))}
    train = ROOT / "workflow/scripts/train.py"
    return scripts | {f"train:{m}": [train, target.split(":")[0]] for m, target in METHODS.items()}


def test_code_fingerprints_follow_the_imports(tmp_path):
    """A rule's code fingerprint covers exactly the package modules its script reaches through imports
    (lazy ones inside functions included): editing any of them changes it, editing any other does not."""
    import shutil

    pkg = tmp_path / "pipeline"
    shutil.copytree(ROOT / "pipeline", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    rules = _fingerprinted_rules()
    before = {rule: code_fingerprint(entries, pkg) for rule, entries in rules.items()}
    closure = {
        rule: {p.relative_to(pkg).as_posix() for p in import_closure(entries, pkg)} for rule, entries in rules.items()
    }
    assert len(set(before.values())) == len(set(map(frozenset, closure.values())))
    for module in sorted(pkg.rglob("*.py")):
        name = module.relative_to(pkg).as_posix()
        text = module.read_text()
        module.write_text(text + "\n# an edit\n")
        changed = {rule for rule, entries in rules.items() if code_fingerprint(entries, pkg) != before[rule]}
        module.write_text(text)
        assert changed == {rule for rule in rules if name in closure[rule]}, name
    # the cases a hand-kept module map had missed: maze decoding reaches alignment through decoding, the
    # maze figures reach decoding and alignment; training reaches no analysis code (imports go down), and
    # each method's fingerprint holds its own module only
    analysis = {"analysis/decoding.py", "analysis/alignment.py"}
    assert analysis | {"analysis/knn.py"} <= closure["maze_decode"]
    assert all(analysis <= closure[f] for f in ("maze_figure_scores", "maze_figure_latents"))
    assert "preprocess/subsets.py" in closure["train"]
    assert not any(name.startswith(("analysis/", "report/")) for name in closure["train"] | closure["train:ner"])
    assert "embed/nn/losses.py" in closure["train:ner"] and "embed/methods/umap.py" not in closure["train:ner"]
    assert not {"embed/nn/losses.py", "torch"} & closure["train:umap"]


LAYERS = ("data", "io", "simulate", "preprocess", "embed", "analysis", "report")  # bottom to top


def test_imports_only_go_down():
    """No module of a science layer reaches the workflow glue (pipeline/stages) or a layer above its own
    through its imports (lazy ones included). The calibration of the simulation against the real sessions
    is a command, not a layer: it reads (io) and prepares (preprocess) both."""
    pkg = ROOT / "pipeline"
    for layer in LAYERS:
        for module in sorted((pkg / layer).rglob("*.py")):
            if module.name == "calibration.py":  # a command (python -m pipeline.simulate.calibration)
                continue
            reached = {p.relative_to(pkg).parts[0] for p in import_closure([module], pkg)}
            above = set(LAYERS[LAYERS.index(layer) + 1 :]) - ({"preprocess"} if layer == "io" else set())
            assert not reached & ({"stages"} | above), (
                f"{module.relative_to(ROOT)} reaches {reached & ({'stages'} | above)}"
            )


def test_code_fingerprints_name_a_missing_entry():
    with pytest.raises(FileNotFoundError, match="pipeline.no_such_module"):
        code_fingerprint(["pipeline.no_such_module"])


@pytest.mark.slow
def test_make_demo_builds_every_result_and_the_report(demo_run):
    """`make demo` exactly as a user runs it (tests/conftest.py's ``demo_run``): recordings, prepared
    stores, the eight methods on their cells, decoding, statistics, the maze analysis and the report."""
    from pipeline.data.store import as_object_strings, open_store, validate_embedding, validate_prepared
    from pipeline.embed.methods import get_method

    work, _ = demo_run
    sheet = load_sheet(work / "config/sessions.tsv")
    assert set(sheet["task"]) == {"center_out", "maze"} and set(sheet["year"]) == {2009, 2015, 2016}
    for sid, row in sheet.iterrows():
        assert (work / "resources/simulated" / f"{sid}.nwb").is_file()
        assert (work / "resources/simulated" / f"{sid}_truth.npz").is_file()
        ds = open_store(work / "results/prepared" / f"{sid}.zarr", layout="prepared")
        validate_prepared(ds, sid)
        assert sorted(set(as_object_strings(ds["area"].values))) == sorted(row["area_list"])
        assert ds.attrs["hemisphere"] == row["hemisphere"] and ds.attrs["year"] == row["year"]
        assert ds.sizes["bin"] == session_row(sheet, sid).get("window_bins", 40)
        if row["task"] == "maze":
            assert ds["straight"].values.any() and (~ds["straight"].values).any()
        assert (work / "logs/prepare" / f"{sid}.log").read_text().count("prepared") >= 1
    # every method on each of its cells (NER on every cell, the peers on M1), trained on the CPU
    import pandas as pd

    for method in DEMO_METHODS:
        cells = demo_cells(method, work)
        assert cells, method
        for sid, area in cells:
            store = work / "results/embeddings" / method / sid / area / "seed0.zarr"
            emb = open_store(store, layout="embedding")
            validate_embedding(emb, store)
            assert emb.attrs["method"] == method
            assert bool(emb.attrs["uses_labels_at_transform"]) == get_method(method).uses_labels_at_transform
            assert emb["latent"].shape[2] == DIMS.get(method, 3) and np.isfinite(emb["latent"].values).all()
            assert (work / "results/models" / method / sid / area / "seed0/model.json").is_file()
            assert (work / "results/benchmarks/train" / method / sid / area / "seed0.tsv").is_file()
            if method == "ner":
                assert emb.attrs["iterations"] == 300 and emb["loss"].shape == (300,)
                assert (work / "results/models/ner" / sid / area / "seed0/model.pt").is_file()
                log = (work / "logs/train/ner" / sid / area / "seed0.log").read_text()
                assert "300/300" in log and "CPU fallback allowed by config" in log  # tqdm progress in the log
        within = pd.read_csv(work / f"results/decoding/within/{method}/seed0.scores.tsv", sep="\t")
        assert set(within.train_cell) == {f"{sid}/{area}" for sid, area in cells}, method
        assert set(within.evaluation) == {"in_sample", "held_out"} and set(within.decoder) == {"linear", "knn"}
        assert np.isfinite(within.value).all(), method
    _check_maze(work)
    _check_decoding_and_report(work)
    # nothing to do on a second run
    again = snakemake("-n", "--cores", "2", cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.parametrize(
    "config", ["config/config.yaml", "config/paper.yaml", "config/dandi.yaml", "config/mc_maze.yaml"]
)
def test_shipped_configs_and_sheets_validate(config):
    from pipeline.stages.config import load_config, maze_method_params, maze_sessions, maze_subset

    cfg = load_config(ROOT / config)
    sheet = load_sheet(ROOT / cfg["sessions"])
    assert len(sheet) >= 1 and set(sheet["format"]) <= {"nwb", "trialdata", "nermat"}
    for sid in maze_sessions(cfg, sheet, config):  # the maze analysis's methods and subsets are valid too
        assert sheet.loc[sid, "task"] == "maze"
    if cfg["maze"]["enabled"]:
        assert {m: maze_method_params(cfg, m, config)["max_iterations"] for m in cfg["maze"]["methods"]}
        assert all(maze_subset(cfg, name)["trial_types"] for name in cfg["maze"]["subsets"])


@requires_real
@pytest.mark.slow
def test_paper_config_prepares_the_seven_real_sessions(workflow_copy):
    work = workflow_copy
    sessions = load_sheet(work / "config/paper_sessions.tsv").index
    targets = [f"results/prepared/{sid}.zarr" for sid in sessions]  # training needs a GPU (paper.yaml)
    snakemake(*targets, "--cores", "2", "--configfile", "config/paper.yaml", "--config", f"data_dir={PAPER}", cwd=work)
    from pipeline.data.store import open_store

    expected = {"Chewie-20150629": (137, 40, 49), "Chewie-20160929": (166, 40, 188), "Han-20171207": (195, 35, 72)}
    for sid, (n_train, n_bins, n_units) in expected.items():
        ds = open_store(work / "results/prepared" / f"{sid}.zarr", layout="prepared")
        assert int((ds["split"] == "train").sum()) == n_train
        assert ds.sizes["bin"] == n_bins and ds.sizes["unit"] == n_units
        assert ds.attrs["smoothed_by"] == "source"
    assert len(list((work / "results/prepared").glob("*.zarr"))) == 7


def _check_maze(work):
    """The demo's maze analysis: 2 subsets x NER and CEBRA on SimJ-20090925."""
    import pandas as pd

    from pipeline.data.store import open_store

    subsets = ["straight", "straight_curve_38"]
    prepared = open_store(work / "results/maze/prepared/SimJ-20090925.zarr", layout="prepared")
    assert prepared.sizes["bin"] == 100 and prepared.attrs["bin_size_s"] == 0.005
    tables = {m: pd.read_csv(work / f"results/maze/decoding/{m}/seed0.scores.tsv", sep="\t") for m in ("ner", "cebra")}
    for method, table in tables.items():
        assert list(dict.fromkeys(table.subset)) == subsets and set(table.session) == {"SimJ-20090925"}
        emb = open_store(work / f"results/maze/embeddings/{method}/SimJ-20090925/straight/seed0.zarr")
        assert emb.attrs["area"] == "M1+PMd" and set(emb["trial_version"].values) == {0}
        assert emb.attrs["iterations"] == 300
    ner = tables["ner"].set_index(["subset", "evaluation", "target", "metric"]).value
    # NER's latents carry the simulated velocity, and separate straight from curved trajectories
    assert ner.xs(("in_sample", "velocity", "r2"), level=(1, 2, 3)).min() > 0.3
    assert ner[("straight_curve_38", "cross_validated", "separation", "straight_curved_accuracy")] > 0.75
    assert (work / "results/maze/figures/scores.png").stat().st_size > 10_000


def _check_decoding_and_report(work):
    """Decode tables, statistics and figures of the demo, and its HTML report in a browser."""
    import pandas as pd

    from tests.support.browser import chromium_path, render_report

    within = pd.read_csv(work / "results/decoding/within/ner/seed0.scores.tsv", sep="\t")
    ins = within[
        (within.evaluation == "in_sample")
        & (within.decoder == "linear")
        & (within.target == "velocity")
        & (within.train_area == "M1")
    ]
    assert ins.value.median() > 0.3  # the simulated M1 encodes velocity; 300 iterations recover part of it
    cross = pd.read_csv(work / "results/decoding/cross/m1_pmd_simc_2016/ner/seed0.scores.tsv", sep="\t")
    assert cross.train_cell.nunique() == 4 and cross.groupby("alignment").test_cell.nunique().eq(4).all()
    assert {"none", "label_free", "label_free_consensus", "few_shot_1", "few_shot_8"} <= set(cross.alignment)
    s1 = pd.read_csv(work / "results/decoding/cross/s1_simc/ner/seed0.scores.tsv", sep="\t")  # 2 cells: no reference
    consensus = s1[(s1.alignment == "label_free_consensus") & (s1.pair == "off_diagonal")]
    assert consensus.value.isna().all() and consensus.note.str.contains("third labelled cell").all()
    assert cross.cross_area.any() and not cross.cross_year.any()
    for method in DEMO_METHODS:  # every method's cross-session matrix over the three M1 cells
        m1 = pd.read_csv(work / f"results/decoding/cross/m1_simc/{method}/seed0.scores.tsv", sep="\t")
        assert m1.train_cell.nunique() == 3 and m1.cross_year.any() and np.isfinite(m1.value).all(), method
    tests = pd.read_csv(work / "results/stats/m1_simc/tests.tsv", sep="\t")
    assert "welch_diag_vs_offdiag" in set(tests.test) and tests.p.between(0, 1).all()
    blocks = pd.read_csv(work / "results/stats/m1_simc/blocks.tsv", sep="\t")
    assert {"cross_hemisphere", "cross_year", "2015->2016", "2016->2015"} <= set(blocks.block)
    similarity = pd.read_csv(work / "results/dynamics/m1_simc/similarity.tsv", sep="\t")
    assert set(similarity.method) == set(DEMO_METHODS) and set(similarity.metric) == {"r", "consistency_r2"}
    assert similarity.value.between(-1, 1).all() and (similarity.pair == "diagonal").sum() == 2 * 3 * len(DEMO_METHODS)
    sim_tests = pd.read_csv(work / "results/dynamics/m1_simc/similarity_tests.tsv", sep="\t")
    assert {"ttest_rel", "welch_diag_vs_offdiag"} <= set(sim_tests.test)
    speed = pd.read_csv(work / "results/dynamics/m1_simc/speed_accuracy.tsv", sep="\t").set_index(["method", "profile"])
    assert speed.loc[("ner", "speed"), "r"] > 0.5  # NER's accuracy rises and falls with the simulated reach
    assert speed["note"].fillna("").str.len().gt(0).eq(speed["r"].isna()).all()  # NaN only with its reason
    coverage = pd.read_csv(work / "results/dynamics/m1_simc/velocity_coverage.tsv", sep="\t")
    assert set(coverage.method) == set(DEMO_METHODS) and set(coverage.evaluation) == {"in_sample", "held_out"}
    population = pd.read_csv(work / "results/dynamics/m1_simc/population.tsv", sep="\t")
    assert set(population.view) >= {"pca_single_trial", "dpca_t", "dpca_s", "dpca_st"}
    assert (work / "results/report.html").stat().st_size > 100_000  # `make demo` ends with the report
    # the interactive 3-D latents: one page per group; the demo's UMAPs are 2-D and said to be left out
    groups = ("m1_simc", "m1_pmd_simc_2016", "s1_simc")
    pages = {f"results/figures/{g}/latents_3d.html" for g in groups}
    m1_page = (work / "results/figures/m1_simc/latents_3d.html").read_text()
    drawn = ", ".join(f"{m} (3 cells)" for m in DEMO_METHODS if DIMS.get(m, 3) >= 3)
    assert f"<p>Methods drawn: {drawn}.</p>" in m1_page
    assert "umap: 2-D latents, not drawn here" in m1_page and "cebra16d: 16-D latents on the first 3" in m1_page
    if chromium_path() is None:
        pytest.skip("chromium is not installed (make test installs envs/apt.txt): report not opened")
    render = render_report(
        work / "results/report.html", timeout_s=240, open_html=["results/figures/m1_simc/latents_3d.html"]
    )
    assert {e.path for e in render.entries if e.mime_type == "text/html"} == pages, render.summary()
    assert render.frames["results/figures/m1_simc/latents_3d.html"] is not None, render.summary()  # drawn in the report
    expected = {
        f"results/figures/{g}/{name}.png"
        for g in ("m1_simc", "m1_pmd_simc_2016", "s1_simc")
        for name in (
            *("matrix_velocity", "matrix_position", "matrix_direction", "accuracy_time", "blocks", "alignments"),
            "latents_ner",
            *("similarity", "speed_accuracy", "velocity_coverage", "population"),
        )
    }
    expected |= {f"results/figures/m1_simc/latents_{m}.png" for m in DEMO_METHODS}  # 16-D: first 3 PCs
    expected |= {
        "results/figures/within/scores.png",
        "results/figures/within/accuracy_time.png",
        "results/maze/figures/scores.png",
        "results/maze/figures/SimJ-20090925/latents.png",
    }
    assert expected <= set(render.figures), sorted(expected - set(render.figures))
    assert render.ok, render.summary()


def test_plan_of_the_demo_config():
    """pipeline.stages.plan: the cells, groups, paired inputs and targets the workflow builds from (the dry run
    of the demo above runs the same plan through Snakemake)."""
    from pipeline.stages.config import load_config
    from pipeline.stages.plan import PATHS, Plan

    config = load_config(ROOT / "config/config.yaml")
    plan = Plan(config, load_sheet(ROOT / config["sessions"]))
    center_out = ["SimC-20150629", "SimC-20161006", "SimC-20161007"]
    assert plan.method_cells("dpca") == [(sid, "M1") for sid in center_out]  # dPCA: center-out only
    assert ("SimJ-20090925", "PMd") in plan.method_cells("ner") and len(plan.method_cells("ner")) == 9
    assert plan.group_methods("m1_simc") == plan.methods and plan.group_methods("s1_simc") == ["ner"]
    pairs = plan.cross_pairs("m1_pmd_simc_2016", "ner", 0)
    assert len(pairs) == 4 and all(p == PATHS["prepared"].format(session=e.split("/")[3]) for e, p in pairs)
    assert [e.split("/")[3:5] for e, _ in pairs][:2] == [["SimC-20161006", "M1"], ["SimC-20161007", "M1"]]
    maze = plan.maze_pairs("cebra", 0)
    assert [e for e, _ in maze] == [
        f"results/maze/embeddings/cebra/SimJ-20090925/{s}/seed0.zarr" for s in ("straight", "straight_curve_38")
    ]
    targets = plan.final_targets()
    assert len(targets) == len(set(targets))
    assert "results/figures/m1_simc/latents_cebra16d.png" in targets and "results/maze/figures/scores.png" in targets
    assert {f"results/figures/{g}/latents_3d.html" for g in plan.groups} <= set(targets)  # one page per group
    assert list(plan.latents_3d_pairs("m1_simc")) == plan.methods  # every method's cells on m1_simc's page
    # one NWB export per session, reading every embedding of the session with its checkpoint, in one order
    assert {f"results/nwb/{sid}.nwb" for sid in plan.sessions} <= set(targets)
    stores, models = plan.session_embeddings("SimC-20161007"), plan.session_embeddings("SimC-20161007", "model")
    assert len(stores) == 10 and [m.replace("models", "embeddings") + ".zarr" for m in models] == stores
    patterns = [re.sub(r"\\{\w+\\}", "[^/]+", re.escape(p)) for p in PATHS.values()]
    unmatched = [t for t in targets if not any(re.match(p, t) for p in patterns)]
    assert not unmatched, unmatched  # every target is built from the one path table

"""Workflow operations on the completed demo (tests/conftest.py's ``demo_run``: `make demo` once, each
test on a private copy), with real Snakemake runs: exactly which jobs rerun after each kind of change,
GPU slots, killing a run during training then resuming it; and between-workflow caching (on the tiny
configuration, tests/workflow/config/tiny.yaml, which needs no completed run)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tests.support.workflow import (
    DEMO_METHODS,
    TINY_CONFIG,
    demo_cells,
    demo_flags,
    job_blocks,
    listed,
    snakemake,
    workflow_env,
)

pytestmark = pytest.mark.slow

SESSIONS = ["SimC-20150629", "SimC-20161006", "SimC-20161007", "SimJ-20090925"]
#: the demo's comparison groups -> the methods cross-decoded in them (config/config.yaml)
GROUPS = {"m1_simc": DEMO_METHODS, "m1_pmd_simc_2016": ["ner"], "s1_simc": ["ner"]}
MAZE_SESSION, MAZE_SUBSETS, MAZE_METHODS = "SimJ-20090925", ["straight", "straight_curve_38"], ["ner", "cebra"]


# --- which jobs a run plans or ran, keyed by (rule, first output) ----------------------------------
def jobs_of(proc: subprocess.CompletedProcess) -> set[tuple[str, str]]:
    """The (rule, first output) of every job block Snakemake printed (dry run: stdout; run: stderr)."""
    return {
        (rule, (listed(fields.get("output", "")) or [""])[0]) for rule, fields in job_blocks(proc.stdout + proc.stderr)
    }


def train_jobs(methods, session=None):
    return {
        ("train", f"results/embeddings/{m}/{sid}/{a}/seed0.zarr")
        for m in methods
        for sid, a in demo_cells(m, session=session)
    }


def session_jobs(sid, simulate=False):
    jobs = {("ingest", f"results/ingest/{sid}.zarr"), ("prepare", f"results/prepared/{sid}.zarr")}
    jobs |= {("simulate", f"resources/simulated/{sid}.nwb")} if simulate else set()
    return jobs | train_jobs(DEMO_METHODS, sid)


def within_jobs(methods=DEMO_METHODS, decode=True):
    jobs = {
        ("stats_within", "results/stats/within/tests.tsv"),
        ("figures_within", "results/figures/within/scores.png"),
        ("all", ""),
    }
    if not decode:
        return jobs
    jobs |= {("decode_within", f"results/decoding/within/{m}/seed0.scores.tsv") for m in methods}
    # every group's accuracy-vs-speed reads the rewritten within-session accuracy tables
    return jobs | {("speed_accuracy", f"results/dynamics/{g}/speed_accuracy.tsv") for g in GROUPS}


#: the latent-dynamics rules of a group; all but population read the embeddings (population: the recordings)
DYNAMICS = ("similarity", "speed_accuracy", "velocity_coverage", "population")
EMBEDDING_DYNAMICS = DYNAMICS[:3]


def group_jobs(group, methods=None, latents=True, dynamics=DYNAMICS):
    methods = GROUPS[group] if methods is None else [m for m in methods if m in GROUPS[group]]
    jobs = {
        ("stats_group", f"results/stats/{group}/tests.tsv"),
        # its first output: the new-session figure (first when configured, as the demo does: report.smk)
        ("figures_group", f"results/figures/{group}/alignments.png"),
    }
    jobs |= {(rule, f"results/dynamics/{group}/{rule}.tsv") for rule in dynamics}
    jobs |= {("cross_decode", f"results/decoding/cross/{group}/{m}/seed0.scores.tsv") for m in methods}
    if latents:
        jobs |= {("figures_latents", f"results/figures/{group}/latents_{m}.png") for m in methods}
        # the interactive page reads every method's latents of the group
        jobs |= {("latents_3d", f"results/figures/{group}/latents_3d.html")} if methods else set()
    return jobs


def export_jobs(sessions=SESSIONS):
    """The NWB export of every session: each reads every within-session table (its rows of them), so any
    rewritten table reruns them all."""
    return {("export_nwb", f"results/nwb/{sid}.nwb") for sid in sessions}


def maze_jobs(methods=MAZE_METHODS, prepare=True):
    jobs = {
        ("maze_train", f"results/maze/embeddings/{m}/{MAZE_SESSION}/{s}/seed0.zarr")
        for m in methods
        for s in MAZE_SUBSETS
    }
    jobs |= {("maze_decode", f"results/maze/decoding/{m}/seed0.scores.tsv") for m in methods}
    jobs |= {
        ("maze_figure_latents", f"results/maze/figures/{MAZE_SESSION}/latents.png"),
        ("maze_figure_scores", "results/maze/figures/scores.png"),
        ("all", ""),
    }
    return jobs | ({("maze_prepare", f"results/maze/prepared/{MAZE_SESSION}.zarr")} if prepare else set())


def planned(work, *extra):
    return jobs_of(snakemake("-n", "--cores", "2", *extra, cwd=work))


def edit(path: Path) -> str:
    """Append a comment to a module (its stage's code fingerprint changes); returns the old source."""
    source = path.read_text()
    path.write_text(source + "\n# an edit that changes the code fingerprint\n")
    return source


def test_reruns_exactly_the_affected_jobs(demo_run, demo_done):
    from pipeline.simulate import simulate_session

    work = demo_done
    everything = set().union(
        *(session_jobs(s, simulate=True) for s in SESSIONS),
        within_jobs(),
        *(group_jobs(g) for g in GROUPS),
        maze_jobs(),
        export_jobs(),
    )
    assert jobs_of(demo_run[1]) == everything  # what `make demo` ran, in the shared completed run

    # 1. nothing changed -> nothing reruns
    again = snakemake("-n", "--cores", "2", cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr and jobs_of(again) == set()

    # 2. one recording changed (a lab re-exported it) -> that session's chain and the groups containing
    # it: every M1 method's training, decoding and m1_simc; not the 2016 groups, not the other sessions
    sid = "SimC-20150629"
    simulate_session(
        work / f"resources/simulated/{sid}.nwb",
        work / f"resources/simulated/{sid}_truth.npz",
        session_id=sid,
        subject="SimC",
        date="2015-06-29",
        hemisphere="right",
        task="center_out",
        areas=["M1"],
        seed=8,
    )
    assert planned(work) == session_jobs(sid) | within_jobs() | group_jobs("m1_simc") | export_jobs()
    shutil.copytree(
        demo_run[0] / "resources/simulated",
        work / "resources/simulated",
        dirs_exist_ok=True,
        copy_function=shutil.copy2,
    )  # the recording as it was (timestamps too)
    assert planned(work) == set()

    # 3. an NER hyper-parameter -> NER training and its downstream; no peer, no prepared store, no maze
    # (its NER sets max_iterations itself)
    config = work / "config/config.yaml"
    original = config.read_text()
    config.write_text(original.replace("max_iterations: 300", "max_iterations: 301", 1))  # methods.ner
    assert planned(work) == (
        train_jobs(["ner"])
        | within_jobs(["ner"])
        | set().union(*(group_jobs(g, ["ner"], dynamics=EMBEDDING_DYNAMICS) for g in GROUPS))
        | export_jobs()
    )
    config.write_text(original)
    assert planned(work) == set()  # params are compared by value: reverting restores the up-to-date state

    # 4. a decoding-only module -> decoding and downstream; binning, training, latent figures untouched
    module = work / "pipeline/analysis/crossdecode.py"
    source = edit(module)
    assert planned(work) == within_jobs() | export_jobs() | set().union(
        *(group_jobs(g, latents=False, dynamics=EMBEDDING_DYNAMICS) for g in GROUPS)
    )
    module.write_text(source)
    # 5. the NER module -> NER training (maze included) and downstream, nothing before it
    module = work / "pipeline/embed/methods/ner.py"
    source = edit(module)
    assert planned(work) == (
        train_jobs(["ner"])
        | within_jobs(["ner"])
        | maze_jobs(["ner"], prepare=False)
        | set().union(*(group_jobs(g, ["ner"], dynamics=EMBEDDING_DYNAMICS) for g in GROUPS))
        | export_jobs()
    )
    module.write_text(source)
    # 6. a module only binning imports -> every prepared store (maze too) and everything after; not
    # simulate or ingest
    module = work / "pipeline/preprocess/prepare.py"
    source = edit(module)
    plan = planned(work)
    assert {rule for rule, _ in plan} >= {"prepare", "maze_prepare", "train", "maze_train"}
    assert not {rule for rule, _ in plan} & {"simulate", "ingest"}
    module.write_text(source)
    assert planned(work) == set()

    # 7. for real: the statistics module -> exactly the statistics jobs and the figures reading them
    # run, then nothing is left to do
    module = work / "pipeline/analysis/stats.py"
    edit(module)
    expected = {("stats_within", "results/stats/within/tests.tsv"), ("all", "")} | {
        (rule, out) for g in GROUPS for rule, out in group_jobs(g, [], dynamics=("similarity",))
    }
    assert planned(work) == expected
    rerun = snakemake("--cores", "2", *demo_flags(), cwd=work, timeout=900)
    assert jobs_of(rerun) == expected
    assert jobs_of(snakemake("-n", "--cores", "2", cwd=work)) == set()

    # 8. a new session in the sheet -> its chain (simulated first) plus the groups its M1 cell joins
    # (every M1 group of SimC and of 2016), not the S1 group
    sheet = work / "config/sessions.tsv"
    sheet.write_text(
        sheet.read_text() + "SimC-20161005\tSimC\t2016-10-05\tleft\tcenter_out\tnwb\tSimC-20161005.nwb\tM1\t\t\t\n"
    )
    chain = {
        ("simulate", "resources/simulated/SimC-20161005.nwb"),
        ("ingest", "results/ingest/SimC-20161005.zarr"),
        ("prepare", "results/prepared/SimC-20161005.zarr"),
    }
    chain |= {("train", f"results/embeddings/{m}/SimC-20161005/M1/seed0.zarr") for m in DEMO_METHODS}
    assert planned(work) == (
        chain
        | within_jobs()
        | group_jobs("m1_simc")
        | group_jobs("m1_pmd_simc_2016")
        | export_jobs([*SESSIONS, "SimC-20161005"])
    )


# --- GPU slots ------------------------------------------------------------------------------------
SHORT = "methods:\n  ner:\n    params: {max_iterations: 100}\n"  # jobs of a few seconds: enough to overlap


def _job_interval(log: Path) -> tuple[datetime, datetime]:
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", log.read_text(), re.M)
    parse = lambda s: datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    return parse(stamps[0]), parse(stamps[-1])


def test_gpu_resource_sets_how_many_training_jobs_run_at_once(demo_done):
    """`--resources gpu=2` runs two GPU-tagged training jobs at the same time; the default profile's
    gpu=1 runs them one after the other. (Which card each job gets is the lease's job:
    tests/unit/test_device.py runs it with concurrent processes; CUDA itself is tested on a GPU machine.)"""
    work = demo_done
    (work / "config/short.yaml").write_text(SHORT)
    targets = [f"results/embeddings/ner/SimC-20161007/{area}/seed0.zarr" for area in ("M1", "PMd")]
    logs = [work / f"logs/train/ner/SimC-20161007/{area}/seed0.log" for area in ("M1", "PMd")]
    config = ("--configfile", "config/config.yaml", "config/short.yaml")

    def overlap():
        (a0, a1), (b0, b1) = (_job_interval(p) for p in logs)
        return (min(a1, b1) - max(a0, b0)).total_seconds()

    one_thread = ("--set-threads", "train=1")  # two jobs on two cores (more threads only spin against each other)
    snakemake(*targets, "--cores", "2", *config, *one_thread, "--resources", "gpu=2", cwd=work, timeout=900)
    assert overlap() > 1.0, "with gpu=2 the two training jobs should run at the same time"
    snakemake(*targets, "--cores", "2", *config, *one_thread, "--forcerun", "train", cwd=work, timeout=900)
    assert overlap() < 0, "with the default profile (gpu: 1) training jobs must not overlap"


# --- between-workflow caching ---------------------------------------------------------------------
def test_second_working_directory_reuses_cached_stores(tiny_workflow, tmp_path):
    from pipeline.data.store import open_store

    cache = tmp_path / "cache"
    cache.mkdir()
    other = tmp_path / "other"
    shutil.copytree(tiny_workflow, other, symlinks=True)
    target = "results/prepared/Tiny-20161005.zarr"
    env = {"SNAKEMAKE_OUTPUT_CACHE": str(cache)}
    args = ("--cores", "2", *TINY_CONFIG, "--cache", "ingest", "prepare", "--", target)
    snakemake(*args, cwd=tiny_workflow, env=env)
    entries = sorted(cache.iterdir())
    assert len(entries) == 2 and all(e.name.endswith(".zarr") for e in entries)  # ingest + prepared
    assert (tiny_workflow / "logs/prepare/Tiny-20161005.log").stat().st_size > 0  # the job ran there

    second = snakemake(*args, cwd=other, env=env)
    assert "from cache" in second.stdout + second.stderr
    for stage in ("ingest", "prepare"):  # neither job ran in the second directory: empty logs
        assert (other / f"logs/{stage}/Tiny-20161005.log").stat().st_size == 0
    store = other / target
    links = [p for p in store.iterdir() if p.is_symlink()]
    assert links and all(str(p.resolve()).startswith(str(cache.resolve())) for p in links)
    mine, theirs = (open_store(w / target, layout="prepared") for w in (tiny_workflow, other))
    np.testing.assert_array_equal(mine["rates"].values, theirs["rates"].values)
    assert mine.attrs == theirs.attrs
    # the cached store is a full input for the next stage
    assert jobs_of(snakemake("-n", "--cores", "2", *TINY_CONFIG, "--", target, cwd=other)) == set()


# --- kill during training, then resume -----------------------------------------------------------
def _processes_in(folder: Path) -> list[int]:
    """Pids of the processes whose working directory is ``folder``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            alive = "State:\tZ" not in (proc / "status").read_text()
            if proc.name.isdigit() and alive and (proc / "cwd").resolve() == folder.resolve():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_killed_run_resumes_to_identical_outputs(demo_run, demo_done):
    from pipeline.data.store import open_store

    work = demo_done
    flags = demo_flags()  # train as `make demo` did (threads per job), so the bits must match its store
    target = "results/embeddings/ner/SimC-20161007/M1/seed0.zarr"
    log = work / "logs/train/ner/SimC-20161007/M1/seed0.log"
    reference = open_store(demo_run[0] / target, layout="embedding").load()

    # the demo's job again, killed (SIGKILL to Snakemake and its job, as a node failure would) mid-training
    log.unlink()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("snakemake")), target, "--cores", "2", *flags, "--forcerun", "train"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=workflow_env(),
    )
    try:
        # the job logs "training ner on" as the solver starts; tqdm reports only every 10 s, so the kill
        # comes 1 s into the 300 iterations (>= 5 s at the 55 it/s measured on 2 cores)
        deadline = time.monotonic() + 300
        while "training ner on" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None, "training never started"
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while _processes_in(work):  # the killed job exits once the kernel has delivered the signal
        assert time.monotonic() < deadline, f"the training job outlived the kill: {_processes_in(work)}"
        time.sleep(0.2)
    assert "wrote" not in log.read_text()  # killed before the store was written
    store = work / target
    assert not store.exists() or not (store / "zarr.json").exists(), "a killed job left a complete-looking store"

    # resume: release the lock the killed Snakemake left, then the incomplete job is rerun to the same result
    snakemake("--unlock", cwd=work)
    resumed = snakemake(target, "--cores", "2", *flags, "--rerun-incomplete", cwd=work, timeout=900)
    assert ("train", target) in jobs_of(resumed)
    again = open_store(store, layout="embedding").load()
    np.testing.assert_array_equal(again["latent"].values, reference["latent"].values)
    np.testing.assert_array_equal(again["loss"].values, reference["loss"].values)
    assert not list((work / "results").rglob("*.tmp-*")), "temporary stores left behind"
    assert jobs_of(snakemake("-n", target, "--cores", "2", cwd=work)) == set()

"""Workflow operations on the tiny configuration (tests/config/tiny.yaml), with real Snakemake runs:
exactly which jobs rerun after each kind of change, GPU slots, between-workflow caching, and killing
a run during training then resuming it."""

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

from conftest import TINY_CONFIG, job_blocks, listed, snakemake, write_tiny_recording

pytestmark = pytest.mark.slow

SESSIONS = ["Tiny-20150629", "Tiny-20161005", "Tiny-20161006"]
METHODS = ["ner", "pca"]
GROUPS = ["m1_tiny", "pmd_tiny", "tiny_2016"]


# --- which jobs a run plans or ran, keyed by (rule, first output) ----------------------------------
def jobs_of(proc: subprocess.CompletedProcess) -> set[tuple[str, str]]:
    """The (rule, first output) of every job block Snakemake printed (dry run: stdout; run: stderr)."""
    return {(rule, (listed(fields.get("output", "")) or [""])[0])
            for rule, fields in job_blocks(proc.stdout + proc.stderr)}


def session_jobs(sid, areas=("M1", "PMd"), methods=METHODS):
    jobs = {("ingest", f"results/ingest/{sid}.zarr"), ("prepare", f"results/prepared/{sid}.zarr")}
    return jobs | train_jobs(methods, [(sid, a) for a in areas])


def train_jobs(methods, cells):
    return {("train", f"results/embeddings/{m}/{sid}/{a}/seed0.zarr") for m in methods for sid, a in cells}


def within_jobs(methods=METHODS, decode=True):
    jobs = {("stats_within", "results/stats/within/tests.tsv"),
            ("figures_within", "results/figures/within/scores.png"), ("all", "")}
    return jobs | ({("decode_within", f"results/decoding/within/{m}/seed0.scores.tsv") for m in methods}
                   if decode else set())


def group_jobs(group, methods=METHODS, latents=True):
    jobs = {("stats_group", f"results/stats/{group}/tests.tsv"),
            ("figures_group", f"results/figures/{group}/matrix_velocity.png")}
    jobs |= {("cross_decode", f"results/decoding/cross/{group}/{m}/seed0.scores.tsv") for m in methods}
    if latents:
        jobs |= {("figures_latents", f"results/figures/{group}/latents_{m}.png") for m in methods}
    return jobs


def planned(work, *extra):
    proc = snakemake("-n", "--cores", "2", *TINY_CONFIG, *extra, cwd=work)
    return jobs_of(proc)


def test_reruns_exactly_the_affected_jobs(tiny_run, tiny_done):
    work = tiny_done
    everything = set().union(*(session_jobs(s) for s in SESSIONS), within_jobs(),
                             *(group_jobs(g) for g in GROUPS))
    assert jobs_of(tiny_run[1]) == everything  # the first run, in the shared completed copy

    # 1. nothing changed -> nothing reruns
    again = snakemake("-n", "--cores", "2", *TINY_CONFIG, cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr and jobs_of(again) == set()

    # 2. one session's recording changed -> that session's chain and the groups containing it, for real
    nwb = work / "resources/tiny/Tiny-20150629.nwb"
    write_tiny_recording(work, "Tiny-20150629", seed=8)
    expected = session_jobs("Tiny-20150629") | within_jobs() | group_jobs("m1_tiny") | group_jobs("pmd_tiny")
    assert planned(work) == expected  # not tiny_2016, not the other sessions
    rerun = snakemake("--cores", "2", *TINY_CONFIG, cwd=work, timeout=1500)
    assert jobs_of(rerun) == expected
    assert jobs_of(snakemake("-n", "--cores", "2", *TINY_CONFIG, cwd=work)) == set()
    assert nwb.stat().st_mtime < (work / "results/prepared/Tiny-20150629.zarr/.snakemake_timestamp").stat().st_mtime

    # 3. an NER hyper-parameter -> NER training and its downstream; no peer, no prepared store
    config = work / "config/tiny.yaml"
    original = config.read_text()
    config.write_text(original.replace("max_iterations: 150", "max_iterations: 151"))
    cells = [(s, a) for s in SESSIONS for a in ("M1", "PMd")]
    assert planned(work) == (train_jobs(["ner"], cells) | within_jobs(["ner"])
                             | set().union(*(group_jobs(g, ["ner"]) for g in GROUPS)))
    config.write_text(original)
    assert planned(work) == set()  # params are compared by value: reverting restores the up-to-date state

    # 4. a decoding-only module of pipeline/ -> decoding and downstream; binning, training, latents untouched
    module = work / "pipeline/crossdecode.py"
    source = module.read_text()
    module.write_text(source + "\n# an edit that changes the decode stage's code fingerprint\n")
    assert planned(work) == within_jobs() | set().union(*(group_jobs(g, latents=False) for g in GROUPS))
    module.write_text(source)
    assert planned(work) == set()

    # 5. a new session in the sheet -> its chain plus the groups it joins (M1 only: not pmd_tiny)
    write_tiny_recording(work, "Tiny-20161007", areas=("M1",))
    sheet = work / "config/tiny_sessions.tsv"
    sheet.write_text(sheet.read_text() + "Tiny-20161007\tTiny\t2016-10-07\tleft\tcenter_out\tnwb\tTiny-20161007.nwb\tM1\n")
    assert planned(work) == (session_jobs("Tiny-20161007", areas=("M1",)) | within_jobs()
                             | group_jobs("m1_tiny") | group_jobs("tiny_2016"))


# --- GPU slots ------------------------------------------------------------------------------------
LONG = "methods:\n  ner:\n    params: {max_iterations: 400}\n"


def _job_interval(log: Path) -> tuple[datetime, datetime]:
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", log.read_text(), re.M)
    parse = lambda s: datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    return parse(stamps[0]), parse(stamps[-1])


def test_gpu_resource_sets_how_many_training_jobs_run_at_once(tiny_done):
    """`--resources gpu=2` runs two GPU-tagged training jobs at the same time; the default profile's
    gpu=1 runs them one after the other. (Which card each job gets is the lease's job:
    tests/test_device.py runs it with concurrent processes; CUDA itself is tested on a GPU machine.)"""
    work = tiny_done
    (work / "config/long.yaml").write_text(LONG)
    targets = [f"results/embeddings/ner/Tiny-20150629/{area}/seed0.zarr" for area in ("M1", "PMd")]
    logs = [work / f"logs/train/ner/Tiny-20150629/{area}/seed0.log" for area in ("M1", "PMd")]
    config = (*TINY_CONFIG, "config/long.yaml")

    def overlap():
        (a0, a1), (b0, b1) = (_job_interval(p) for p in logs)
        return (min(a1, b1) - max(a0, b0)).total_seconds()

    snakemake(*targets, "--cores", "4", *config, "--resources", "gpu=2", cwd=work, timeout=900)
    assert overlap() > 1.0, "with gpu=2 the two training jobs should run at the same time"
    snakemake(*targets, "--cores", "4", *config, "--forcerun", "train", cwd=work, timeout=900)
    assert overlap() < 0, "with the default profile (gpu: 1) training jobs must not overlap"


# --- between-workflow caching ---------------------------------------------------------------------
def test_second_working_directory_reuses_cached_stores(tiny_workflow, tmp_path):
    from pipeline.store import open_store

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


def test_killed_run_resumes_to_identical_outputs(tiny_done):
    from pipeline.store import open_store

    work = tiny_done
    (work / "config/long.yaml").write_text(LONG)
    config = (*TINY_CONFIG, "config/long.yaml")
    target = "results/embeddings/ner/Tiny-20161006/M1/seed0.zarr"
    log = work / "logs/train/ner/Tiny-20161006/M1/seed0.log"
    snakemake(target, "--cores", "2", *config, cwd=work, timeout=900)
    reference = open_store(work / target, layout="embedding").load()

    # the same job again, killed (SIGKILL to Snakemake and its job, as a node failure would) mid-training
    log.unlink()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("snakemake")), target, "--cores", "2", *config,
                             "--forcerun", "train"], cwd=work, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # the job logs "training ner on ..." as the solver starts; tqdm reports only every 10 s, so the
        # kill comes 1 s into the 400 iterations (>= 7 s at the 55 it/s measured on 2 cores)
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
    snakemake("--unlock", *config, cwd=work)
    resumed = snakemake(target, "--cores", "2", *config, "--rerun-incomplete", cwd=work, timeout=900)
    assert ("train", target) in jobs_of(resumed)
    again = open_store(store, layout="embedding").load()
    np.testing.assert_array_equal(again["latent"].values, reference["latent"].values)
    np.testing.assert_array_equal(again["loss"].values, reference["loss"].values)
    assert not list((work / "results").rglob("*.tmp-*")), "temporary stores left behind"
    assert jobs_of(snakemake("-n", target, "--cores", "2", *config, cwd=work)) == set()

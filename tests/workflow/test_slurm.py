"""The SLURM profile (profiles/slurm/profile.yaml) on a real single-node SLURM cluster.

`tests/support/slurm_cluster.py` starts munged, slurmctld and slurmd on this host (root and Debian's slurm-wlm
and munge are needed; `make system-packages` installs them) with two stand-in GPUs declared as
``gres/gpu``, so that the training jobs' ``--gpus=1`` is scheduled as on a GPU partition. In a copy of
the completed demo (tests/conftest.py's ``demo_run``), an NER and a PCA training and the two decoding
tables after them run again through Snakemake's SLURM executor with the profile, edited only where the README
tells a lab to edit it (account, partitions, CPUs per GPU of its nodes); their results must equal the
local run's bit for bit. The dry run of the profile over the whole demo needs no cluster and always runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.support.slurm_cluster import SingleNodeSlurm, unavailable_reason
from tests.support.workflow import demo_flags, job_blocks, keyed, snakemake

pytestmark = pytest.mark.slow

# Jobs the SLURM executor submits for the whole demo (a dry run of every job); the statistics, figure
# and report aggregations are `localrule: True` and run on the submitting host.
PLANNED = {
    "ingest": 4,
    "prepare": 4,
    "train": 35,
    "decode_within": 8,
    "cross_decode": 10,
    "maze_prepare": 1,
    "maze_train": 4,
    "maze_decode": 2,
    "similarity": 3,
    "velocity_coverage": 3,
    "population": 3,
    "export_nwb": 4,
}
LOCAL = {
    "simulate",
    "stats_within",
    "stats_group",
    "figures_within",
    "figures_group",
    "figures_latents",
    "latents_3d",
    "speed_accuracy",
    "maze_figure_latents",
    "maze_figure_scores",
    "all",
}
GPU_METHODS = {"ner", "cebra", "cebra16d", "pivae"}  # these ask for a GPU; PCA, dPCA, UMAP train without one
# (runtime, mem_mb) each rule asks for (its `resources:`, else the profile's default-resources)
RESOURCES = {
    "ingest": ("00:30:00", 4000),
    "prepare": ("00:30:00", 4000),
    "train": ("04:00:00", 8000),
    "decode_within": ("01:00:00", 4000),
    "cross_decode": ("02:00:00", 4000),
    "similarity": ("00:30:00", 4000),
    "velocity_coverage": ("00:30:00", 4000),
    "population": ("00:30:00", 4000),
    "export_nwb": ("00:30:00", 4000),
}
# What the SLURM run submits: an NER (GPU) and a PCA training of one cell, and the NER and PCA decoding
# tables that read the new stores; the within-session statistics after them run locally.
NER = "results/embeddings/ner/SimC-20161007/M1/seed0.zarr"
PCA = "results/embeddings/pca/SimC-20161007/M1/seed0.zarr"
TABLES = ["results/decoding/within/ner/seed0.scores.tsv", "results/decoding/within/pca/seed0.scores.tsv"]
STATS = "results/stats/within/tests.tsv"
SUBMITTED = {"train": 2, "decode_within": 2}


def site_profile(work: Path, partition: str, cpus: int) -> Path:
    """profiles/slurm/profile.yaml as a lab adapts it: its account and partitions, CPUs per GPU of its
    nodes; plus the two settings this accounting-free test cluster needs (squeue for job status, a short
    first status check)."""
    profile = yaml.safe_load((work / "profiles/slurm/profile.yaml").read_text())
    profile["default-resources"].update(slurm_account="pytest", slurm_partition=partition)
    for gpu_rule in ("train", "maze_train"):
        train = profile["set-resources"][gpu_rule]
        train.update(slurm_partition=partition, cpus_per_gpu=min(train["cpus_per_gpu"], cpus))
    profile["slurm-status-command"] = "squeue"
    profile["slurm-init-seconds-before-status-checks"] = 2
    folder = work / "site_profile"  # not under profiles/: the working copies link that to the project's
    folder.mkdir()
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile))
    return folder


def _planned_resources(text: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(rule, wildcards, resources) of every job block a dry run printed."""
    return [
        (rule, keyed(fields.get("wildcards", "")), keyed(fields.get("resources", "")))
        for rule, fields in job_blocks(text)
    ]


def test_profile_dry_run(workflow_copy):
    """The profile parses, selects the SLURM executor (which dry-runs without SLURM) and gives each job
    of the demo the partition, GPUs, CPUs per GPU, memory and runtime that become its sbatch options."""
    proc = snakemake("-n", "--workflow-profile", "profiles/slurm", "--forceall", cwd=workflow_copy)
    text = proc.stdout + proc.stderr
    assert "Using workflow specific profile profiles/slurm" in text
    jobs = _planned_resources(text)
    counts = {rule: sum(r == rule for r, _, _ in jobs) for rule in PLANNED}
    assert counts == PLANNED
    assert {r for r, _, _ in jobs} - set(PLANNED) <= LOCAL
    for rule, wildcards, res in jobs:
        if rule in LOCAL:
            continue
        if rule in RESOURCES:
            runtime, mem_mb = RESOURCES[rule]
            hours, minutes, _ = map(int, runtime.split(":"))
            assert res["runtime"] == str(60 * hours + minutes) and res["mem_mb"] == str(mem_mb), (rule, res)
        assert res["slurm_account"] == "your_account", (rule, res)
        if rule in ("train", "maze_train"):
            gpu = wildcards["method"] in GPU_METHODS
            assert res["slurm_partition"] == "your_gpu_partition" and res["cpus_per_gpu"] == "4"
            assert res["gpu"] == ("1" if gpu else "0"), (wildcards, res)
        else:
            assert res["slurm_partition"] == "your_partition" and res.get("gpu", "0") == "0", (rule, res)


def _rule_of(comment: str) -> str:
    """Snakemake's SLURM executor comments each job ``rule_<rule>[_wildcards_<values joined by _>]``."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def _wildcard_values(comment: str) -> list[str]:
    return comment.split("_wildcards_")[1].split("_") if "_wildcards_" in comment else []


def _job_details(job_id: int) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", str(job_id)], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"(\w+(?:/\w+)?)=(\S*)", out))


def test_demo_jobs_run_through_sbatch_and_match_the_local_run(demo_run, demo_done, tmp_path):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no SLURM test cluster: {reason}")
    work, local = demo_done, demo_run[0]  # local: the demo as `make demo` ran it (shared, read-only)
    cpus = os.cpu_count() or 1
    profile = site_profile(work, "pytest", cpus)
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # jobs' snakemake: this venv

    # 6 declared CPUs at least (oversubscribed on a 2-core machine): jobs overlap as on a real node
    with SingleNodeSlurm(workdir=tmp_path / "slurm", partition="pytest", gpus=2, cpus=max(6, cpus)) as cluster:
        run = snakemake(
            "--workflow-profile",
            profile,
            *demo_flags(),
            "--forcerun",
            NER,
            PCA,
            "--",
            NER,
            PCA,
            STATS,
            cwd=work,
            env=env,
            timeout=1200,
        )
        jobs = cluster.jobs()
        details = {job.job_id: _job_details(job.job_id) for job in jobs}
        submitted = cluster.submitted_job_ids()

    # every non-local job went through sbatch, once, and completed; the local rule did not
    by_rule: dict[str, list] = {}
    for job in jobs:
        by_rule.setdefault(_rule_of(job.comment), []).append(job)
    assert {rule: len(js) for rule, js in by_rule.items()} == SUBMITTED, run.stderr[-3000:]
    assert sorted(submitted) == sorted(job.job_id for job in jobs)
    assert all(job.state == "COMPLETED" for job in jobs), [j for j in jobs if j.state != "COMPLETED"]
    assert len({job.name for job in jobs}) == 1  # one run: the executor names all jobs after its UUID
    assert "stats_within" in run.stdout + run.stderr  # ran here, on the submitting host

    # resources reached sbatch: a GPU for NER training only, the rule's memory and runtime, the partition
    for job in jobs:
        info, rule = details[job.job_id], _rule_of(job.comment)
        assert info["Partition"] == "pytest"
        wants_gpu = rule == "train" and _wildcard_values(job.comment)[0] in GPU_METHODS  # {method} first
        assert (info.get("TresPerJob") == "gres:gpu:1") == wants_gpu, (job, info.get("TresPerJob"))
        if wants_gpu:
            assert info["CpusPerTres"] == f"gres:gpu:{min(4, cpus)}", info  # the profile's cpus_per_gpu
        runtime, mem_mb = RESOURCES[rule]
        assert info["TimeLimit"] == runtime and info["MinMemoryNode"] == f"{mem_mb}M", (rule, info)
    assert "CPU fallback allowed by config" in (work / "logs/train/ner/SimC-20161007/M1/seed0.log").read_text()

    # the same jobs run locally by `make demo` gave the same results
    from pipeline.data.store import open_store

    for rel in (NER, PCA):
        ours, theirs = (open_store(w / rel, layout="embedding") for w in (work, local))
        # same machine, same threads per job, CPU: bit-identical (measured), not merely close
        np.testing.assert_array_equal(ours["latent"].values, theirs["latent"].values, err_msg=rel)
    assert (work / NER).stat().st_mtime > (local / NER).stat().st_mtime  # really trained again
    for rel in (*TABLES, STATS):
        ours, theirs = (pd.read_csv(w / rel, sep="\t") for w in (work, local))
        pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-4, atol=1e-6, obj=rel)

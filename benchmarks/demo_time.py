"""Where a workflow run's time went, from Snakemake's per-job benchmark TSVs (``benchmark:`` of each rule).

Reads ``results/benchmarks/{rule}/.../*.tsv`` of a finished run (``make demo`` writes them; ingest and
prepare are ``cache: True`` rules, which Snakemake does not benchmark) and prints a markdown table per
stage (training per method): jobs, summed wall seconds, summed CPU seconds and CPU seconds per job.
Summed wall time exceeds the run's wall time when jobs ran side by side; pass the run's measured wall
time with ``--wall`` to print it beside the sums.

With ``--scores`` it also prints, per method, the median over the run's M1 cells of the within-session
velocity R² (linear decoder; held-out and in-sample), from ``results/decoding/within/*/seed0.scores.tsv``.

    python -m benchmarks.demo_time [RUN_DIR] [--wall SECONDS] [--scores]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def job_times(run_dir: str | Path) -> pd.DataFrame:
    """One row per benchmarked job: ``stage`` (rule, or ``train ner`` per method), ``job``, ``wall_s``,
    ``cpu_s`` (Snakemake's psutil CPU time of the job's processes)."""
    root = Path(run_dir) / "results/benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        parts = path.relative_to(root).parts
        stage = parts[0] if parts[0] not in ("train", "maze_train") else f"{parts[0]} {parts[1]}"
        table = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "stage": stage,
                "job": "/".join(parts[1:]),
                "wall_s": float(table["s"].iloc[-1]),
                "cpu_s": float(table["cpu_time"].iloc[-1]),
            }
        )
    if not rows:
        raise SystemExit(f"{root}: no benchmark TSVs (is this a finished run?)")
    return pd.DataFrame(rows)


def stage_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs, summed wall and CPU seconds and CPU seconds per job of each stage, largest CPU first."""
    out = jobs.groupby("stage").agg(jobs=("job", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"))
    out["cpu_s_per_job"] = out["cpu_s"] / out["jobs"]
    out = out.sort_values("cpu_s", ascending=False)
    total = pd.DataFrame(
        {
            "jobs": [out["jobs"].sum()],
            "wall_s": [out["wall_s"].sum()],
            "cpu_s": [out["cpu_s"].sum()],
            "cpu_s_per_job": [out["cpu_s"].sum() / out["jobs"].sum()],
        },
        index=["all benchmarked jobs"],
    )
    return pd.concat([out, total])


def m1_velocity_scores(run_dir: str | Path, area: str = "M1") -> pd.DataFrame:
    """Median and range over the ``area`` cells of each method's within-session velocity R² (linear)."""
    tables = [
        pd.read_csv(p, sep="\t") for p in sorted(Path(run_dir).glob("results/decoding/within/*/seed0.scores.tsv"))
    ]
    scores = pd.concat(tables)
    sel = scores[
        (scores.decoder == "linear")
        & (scores.target == "velocity")
        & (scores.metric == "r2")
        & (scores.train_area == area)
    ]
    return (
        sel.groupby(["method", "evaluation"])
        .value.agg(["median", "min", "max", "size"])
        .unstack("evaluation")
        .sort_values(("median", "held_out"), ascending=False)
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", default=".")
    parser.add_argument("--wall", type=float, help="the run's measured wall time (s)")
    parser.add_argument("--scores", action="store_true", help="also the M1 velocity R² of every method")
    args = parser.parse_args(argv)
    table = stage_table(job_times(args.run_dir))
    print("| stage | jobs | wall s (sum) | CPU s (sum) | CPU s per job |")
    print("| --- | --- | --- | --- | --- |")
    for stage, r in table.iterrows():
        print(f"| {stage} | {int(r.jobs)} | {r.wall_s:.0f} | {r.cpu_s:.0f} | {r.cpu_s_per_job:.1f} |")
    if args.wall:
        cpu = table.loc["all benchmarked jobs", "cpu_s"]
        print(
            f"\nrun wall time {args.wall:.0f} s; benchmarked CPU {cpu:.0f} s = {cpu / args.wall:.2f} cores busy "
            "on average"
        )
    if args.scores:
        scores = m1_velocity_scores(args.run_dir)
        print("\n| method | M1 cells | held-out velocity R², median (range) | in-sample, median (range) |")
        print("| --- | --- | --- | --- |")
        for method, r in scores.iterrows():
            print(
                f"| {method} | {int(r[('size', 'held_out')])} | {r[('median', 'held_out')]:.2f} "
                f"({r[('min', 'held_out')]:.2f} – {r[('max', 'held_out')]:.2f}) | {r[('median', 'in_sample')]:.2f} "
                f"({r[('min', 'in_sample')]:.2f} – {r[('max', 'in_sample')]:.2f}) |"
            )


if __name__ == "__main__":
    main()

"""Workflow scale: Snakemake DAG construction for a large sheet, and the no-op rerun of the demo.

(a) A private working copy (as the ``workflow_copy`` test fixture: Snakefile, workflow/, config/ and
pipeline/ copied, profiles/ and envs/ symlinked) gets a generated sheet of ``--sessions`` simulated
sessions (subjects SimA..SimE, 2015 right / 2016 left hemisphere, center-out, plus ``--maze`` maze
rows of SimJ; every row M1,PMd,S1) and a config overlay enabling ner, cebra, pivae, pca, dpca, umap
and umap_labels on every area (cebra16d off), ``seeds: [0, 1, 2]`` and comparison groups (one per
area over all sessions, one per subject x year, on top of the demo's). ``snakemake -n`` on it (the
whole fresh DAG: ~6 000 training jobs plus simulate/ingest/prepare/decode/stats/figures) is timed
as wall time of the CLI, best of ``--repeats``, and its "Job stats:" table is summarised.

Side by side, the **same DAG in bare Snakemake**: every job of that dry run (rule, outputs, inputs)
becomes a job of a generated Snakefile with one rule per rule, a ``{key}`` wildcard, one input
function (a dict lookup) and ``shell: "touch {output}"`` -- no params, resources, scripts, logs or
config. Its dry run is Snakemake's own floor for this many jobs and edges; the ratio says how much
of the time is ours (input functions, params, fingerprints, resources, script rules, validation).

(b) With ``--demo-dir DIR`` (a working copy where the demo already ran to completion), the no-op
rerun is timed there: ``snakemake -n --cores 2`` and the real ``snakemake --cores 2`` (which must
print "Nothing to be done"; it is only run when the dry run says so). Pass the config files the
demo was run with through ``--demo-config`` (they become ``--configfile ...``), e.g.

    python -m benchmarks.bench_dag [--sessions 100] [--maze 4] [--repeats 3] [--cores 8] [--quiet]
        [--demo-dir /tmp/quick/wd --demo-config config/config.yaml /tmp/quick/fast.yaml] [--keep]

Goals: dry run of the large DAG under 15 s, no-op rerun under 5 s ("goal met"/"goal missed" is
printed; the exit status is non-zero only when a snakemake call fails).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.workflow import job_blocks, listed, make_workflow_copy  # the tests' workflow helpers

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SUBJECTS = ("SimA", "SimB", "SimC", "SimD", "SimE")
METHODS = ("ner", "cebra", "pivae", "pca", "dpca", "umap", "umap_labels")
COLUMNS = (
    "session_id",
    "subject",
    "date",
    "hemisphere",
    "task",
    "format",
    "path",
    "areas",
    "align_event",
    "window_start_bins",
    "window_bins",
)
DAG_GOAL_S, NOOP_GOAL_S = 15.0, 5.0


class RunFailed(RuntimeError):
    pass


def sheet_rows(n_sessions: int, n_maze: int) -> list[dict]:
    """``n_sessions`` rows: ``n_maze`` maze rows of SimJ, the rest center-out over SUBJECTS."""
    rows = []
    n_center = n_sessions - n_maze
    for i in range(n_center):
        subject = SUBJECTS[i % len(SUBJECTS)]
        k = i // len(SUBJECTS)  # the subject's k-th session
        per_subject = -(-n_center // len(SUBJECTS))
        year = 2015 if k < (per_subject + 1) // 2 else 2016
        date = dt.date(year, 3, 1) + dt.timedelta(days=2 * k)
        rows.append(
            {"subject": subject, "date": date, "hemisphere": "right" if year == 2015 else "left", "task": "center_out"}
        )
    for k in range(n_maze):
        year = 2015 + k % 2
        rows.append(
            {
                "subject": "SimJ",
                "date": dt.date(year, 9, 1) + dt.timedelta(days=k),
                "hemisphere": "left",
                "task": "maze",
                "align_event": "move_onset",
                "window_start_bins": -2,
                "window_bins": 17,
            }
        )
    for r in rows:
        r["session_id"] = f"{r['subject']}-{r['date']:%Y%m%d}"
        r["date"] = r["date"].isoformat()
        r.update(format="nwb", path=f"{r['session_id']}.nwb", areas="M1,PMd,S1")
    return rows


def write_inputs(work: Path, n_sessions: int, n_maze: int) -> Path:
    """Write config/bench_sessions.tsv and config/bench.yaml into ``work``; returns the overlay."""
    import yaml

    rows = sheet_rows(n_sessions, n_maze)
    lines = ["\t".join(COLUMNS)] + ["\t".join(str(r.get(c, "")) for c in COLUMNS) for r in rows]
    (work / "config" / "bench_sessions.tsv").write_text("\n".join(lines) + "\n")
    groups = {f"all_{a}": {"areas": [a]} for a in ("M1", "PMd", "S1")}
    years = sorted({int(r["date"][:4]) for r in rows if r["task"] == "center_out"})
    for subject in SUBJECTS:
        for year in years:
            groups[f"{subject.lower()}_{year}"] = {"subjects": [subject], "years": [year]}
    methods = {m: {"enabled": True, "areas": None} for m in METHODS}
    methods["cebra16d"] = {"enabled": False}
    overlay = {"sessions": "config/bench_sessions.tsv", "seeds": [0, 1, 2], "methods": methods, "groups": groups}
    path = work / "config" / "bench.yaml"
    path.write_text(yaml.safe_dump(overlay, sort_keys=False))
    return path


def planned_jobs(output: str) -> list[tuple[str, list[str], list[str]]]:
    """(rule, outputs, inputs) of every job block of a dry run's output."""
    return [
        (rule, listed(fields.get("output", "")), listed(fields.get("input", ""))) for rule, fields in job_blocks(output)
    ]


def bare_workflow(parent: Path, jobs: list[tuple[str, list[str], list[str]]]) -> Path:
    """A Snakefile with the same jobs and edges as ``jobs`` and nothing else (see the module docstring)."""
    import json

    produced = {out: (rule, f"j{i}") for i, (rule, outs, _) in enumerate(jobs) for out in outs}
    by_rule: dict[str, dict[str, list[str]]] = {}
    target = None
    for i, (rule, _outs, ins) in enumerate(jobs):
        deps = [f"{produced[p][0]}/{produced[p][1]}" for p in ins if p in produced]
        if rule == "all":
            target = deps
            continue
        by_rule.setdefault(rule, {})[f"j{i}"] = deps
    work = parent / "bare"
    work.mkdir()
    (work / "edges.json").write_text(json.dumps(by_rule))
    lines = [
        "import json",
        "EDGES = json.load(open('edges.json'))",
        "",
        "rule all:",
        f"    input: {json.dumps(target)}",
        "",
    ]
    for rule in by_rule:
        lines += [
            f"rule {rule}:",
            f"    input: lambda w: EDGES[{rule!r}][w.key]",
            f"    output: '{rule}/{{key}}'",
            "    shell: 'touch {output}'",
            "",
        ]
    (work / "Snakefile").write_text("\n".join(lines))
    return work


def snakemake(args: list[str], cwd: Path, timeout: float = 900) -> tuple[float, str]:
    """Run the snakemake CLI; returns (wall seconds, stdout + stderr). Raises RunFailed."""
    t = time.perf_counter()
    proc = subprocess.run([str(SNAKEMAKE), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RunFailed(f"snakemake {' '.join(args)} (in {cwd}) exited {proc.returncode}:\n{out[-3000:]}")
    return wall, out


def best_of(args: list[str], cwd: Path, repeats: int) -> tuple[float, list[float], str]:
    """Best wall time of ``repeats`` runs, all times, and the last output."""
    times, out = [], ""
    for _ in range(repeats):
        wall, out = snakemake(args, cwd)
        times.append(wall)
    return min(times), times, out


def job_stats(output: str) -> dict[str, int]:
    """The "Job stats:" table of a snakemake -n run as {rule: count} (last table in the output)."""
    blocks = output.split("Job stats:")
    if len(blocks) < 2:
        raise RunFailed("no 'Job stats:' table in the snakemake output:\n" + output[-2000:])
    counts = {}
    for line in blocks[-1].splitlines()[1:]:
        m = re.match(r"^\s*([A-Za-z_]\w*)\s+(\d+)\s*$", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
        elif counts and not line.strip():
            break
    if "total" not in counts:
        raise RunFailed("unparsable 'Job stats:' table:\n" + blocks[-1][:2000])
    return counts


def verdict(seconds: float, goal: float | None) -> str:
    if goal is None:
        return "reference"
    return f"goal met (< {goal:g} s)" if seconds < goal else f"goal missed (>= {goal:g} s)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=100, help="rows of the generated sheet")
    ap.add_argument("--maze", type=int, default=4, help="of which maze rows (SimJ)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cores", type=int, default=8, help="--cores of the large dry run")
    ap.add_argument(
        "--quiet",
        action="store_true",
        help="also time the large dry run with --quiet rules (no per-job listing, summary kept)",
    )
    ap.add_argument(
        "--demo-dir",
        type=Path,
        default=None,
        help="working copy where the demo ran to completion (no-op timing; skipped when absent)",
    )
    ap.add_argument(
        "--demo-config",
        nargs="+",
        default=None,
        metavar="FILE",
        help="config files the demo was run with (passed as --configfile FILE ...)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the generated working copy (path printed)")
    args = ap.parse_args()
    if not 0 <= args.maze < args.sessions:
        ap.error("--maze must be in [0, --sessions)")

    results = []  # (label, best s, all s, goal)
    failed = False
    tmp = Path(tempfile.mkdtemp(prefix="bench_dag_"))
    try:
        work = make_workflow_copy(tmp)
        overlay = write_inputs(work, args.sessions, args.maze)
        dry = ["-n", "--cores", str(args.cores), "--configfile", "config/config.yaml", str(overlay.relative_to(work))]
        print(
            f"working copy {work}: {args.sessions} sessions ({args.maze} maze), methods {', '.join(METHODS)}, "
            f"seeds 0-2; best of {args.repeats}",
            flush=True,
        )
        best, times, out = best_of(dry, work, args.repeats)
        counts = job_stats(out)
        results.append((f"dry run, {args.sessions} sessions (-n --cores {args.cores})", best, times, DAG_GOAL_S))
        width = max(map(len, counts))
        print("Job stats:")
        for name, count in counts.items():
            print(f"  {name:<{width}} {count:6d}")
        jobs = planned_jobs(out)
        if len(jobs) != counts["total"]:
            raise RunFailed(f"parsed {len(jobs)} job blocks, the Job stats table counts {counts['total']}")
        bare = bare_workflow(tmp, jobs)
        best_b, times_b, out_b = best_of(["-n", "--cores", str(args.cores)], bare, args.repeats)
        if job_stats(out_b)["total"] != counts["total"]:
            raise RunFailed("the bare workflow plans a different number of jobs")
        results.append((f"same DAG, bare Snakemake (-n --cores {args.cores})", best_b, times_b, None))
        print(
            f"ours / bare Snakemake: {best / best_b:.2f}x ({1e3 * best / counts['total']:.1f} vs "
            f"{1e3 * best_b / counts['total']:.1f} ms per job)"
        )
        if args.quiet:
            best_q, times_q, out_q = best_of(dry + ["--quiet", "rules"], work, args.repeats)
            if job_stats(out_q)["total"] != counts["total"]:
                raise RunFailed("--quiet rules dry run counts a different number of jobs")
            results.append((f"dry run, {args.sessions} sessions, --quiet rules", best_q, times_q, DAG_GOAL_S))
    except (RunFailed, subprocess.TimeoutExpired) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        failed = True
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if args.demo_dir is None:
        print("no-op rerun: skipped (pass --demo-dir DIR [--demo-config FILE ...] of a completed demo)")
    else:
        demo = args.demo_dir.resolve()
        cfg = ["--configfile", *args.demo_config] if args.demo_config else []
        try:
            if not (demo / "workflow/Snakefile").is_file():
                raise RunFailed(f"{demo} has no workflow/Snakefile")
            best, times, out = best_of(["-n", "--cores", "2", *cfg], demo, args.repeats)
            results.append(("no-op rerun, dry (-n --cores 2)", best, times, NOOP_GOAL_S))
            if "Nothing to be done" not in out:
                counts = job_stats(out)
                raise RunFailed(
                    f"the demo in {demo} is not up to date ({counts['total']} jobs to run; "
                    f"same --demo-config as its run?); the real no-op run is not attempted"
                )
            best, times, out = best_of(["--cores", "2", *cfg], demo, args.repeats)
            if "Nothing to be done" not in out:
                raise RunFailed("the real no-op run did not print 'Nothing to be done':\n" + out[-2000:])
            results.append(("no-op rerun, real (--cores 2)", best, times, NOOP_GOAL_S))
        except (RunFailed, subprocess.TimeoutExpired) as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            failed = True

    if results:
        width = max(len(r[0]) for r in results)
        print(f"\n{'case':<{width}}  {'best s':>7}  {'all s':<22}  verdict")
        for label, best, times, goal in results:
            print(f"{label:<{width}}  {best:7.2f}  {' '.join(f'{t:.2f}' for t in times):<22}  {verdict(best, goal)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

"""The CUDA path measured end to end in one command, with one summary table.

Prepared here, run on a lent CUDA machine (Python 3.12 with CUDA torch, numpy, scipy, scikit-learn,
xarray, pandas and h5py; no internet; no zarr, dask, jsonschema or cebra):

    make gpu-bundle     # here: the wheels that image lacks (cp312 manylinux) and the real session, in .gpu/
    make gpu-check      # there (device tool: carry [".gpu"]); here it runs the same steps on the CPU

``make gpu-check`` installs .gpu/wheels into .gpu/site when the image lacks them and runs this module.
Steps, each timed; one line of the summary each:

1. the ``cuda``-marked tests (rank loss on the GPU, NER and piVAE on the real session);
2. ``bench_rank_loss`` at M = 1024 (forward + backward, ms) on the device;
3. ``bench_training``: NER against the ``cebra`` package on the same card (it/s);
4. NER with the paper's 20 000 iterations on the real session (Chewie 2016-10-07 M1) through the
   training stage: wall time and held-out velocity R² of the linear decoder;
5. two training processes started at once, each leasing a GPU (:mod:`pipeline.embed.device`): on one
   card the second waits for the first, on several they run side by side; never two on one card.

    python3 -m benchmarks.gpu_check [--device cuda|cpu] [--iterations 20000] [--quick] [--data DIR]

``--quick`` (the CPU exercise) shortens every step. The table is printed and written to
``.gpu/summary.md`` (and to ``$OUT`` when set, where the device tool fetches files from).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / ".gpu"
SESSION = "Chewie_20161007_neural_con_dis_index.mat"


def data_dir(given: Path | None) -> Path:
    """The paper's preprocessed files: ``--data``, the bundle's copy, or ../shared beside the checkout."""
    for folder in (
        given,
        BUNDLE / "data" / "ner_paper_preprocessed",
        ROOT.parent / "shared/data/real/ner_paper_preprocessed",
    ):
        if folder is not None and (Path(folder) / SESSION).is_file():
            return Path(folder)
    raise SystemExit(f"gpu_check: {SESSION} not found (run `make gpu-bundle`, or pass --data)")


def _run(cmd: list[str], env: dict | None = None, timeout: float = 1800) -> tuple[int, str, float]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start


def step_tests(device: str, data: Path) -> dict:
    env = {**os.environ, "NER_REAL_DATA": str(data.parent)}
    files = ["tests/unit/test_losses.py", "tests/realdata/test_ner.py", "tests/realdata/test_pivae.py"]
    rc, out, seconds = _run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", *files], env)
    last = next((line for line in reversed(out.splitlines()) if re.search(r"\d+ (passed|skipped|failed)", line)), "")
    return {"ok": rc in (0, 5) and "failed" not in last, "seconds": seconds, "result": last.strip("= "), "log": out}


def step_rank_loss(device: str, quick: bool) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_rank_loss", "--sizes", "256", "1024", "--device", device]
    cmd += ["--repeats", "5" if quick else "20", "--skip-cubic-above", "256"]  # exact against O(M^3) at 256
    rc, out, seconds = _run(cmd)
    row = next((line.split() for line in out.splitlines() if line.strip().startswith("1024 ")), None)
    agree = next((line.split("O(M^3)")[-1].strip() for line in out.splitlines() if "M=  256" in line), "?")
    result = (
        f"rank_loss {row[1]} ms, RankLoss {row[2]} ms, float32 {row[6]} ms (structure {row[7]} + step {row[8]}), "
        f"InfoNCE {row[5]} ms (M = 1024); vs O(M^3) at 256: {agree}"
        if row
        else "no row"
    )
    return {"ok": rc == 0 and row is not None, "seconds": seconds, "result": result, "log": out}


def step_training(device: str, data: Path, quick: bool) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_training", "--device", device, "--data", str(data)]
    cmd += ["--iterations", "100" if quick else "2000", "--repeats", "1" if quick else "2"]
    rc, out, seconds = _run(cmd)
    rates = {}
    for line in out.splitlines():
        match = re.match(r"\| (ours \(NER[^|]*|ours, training loop only|cebra[^|]*) \|[^|]*\| ([\d.]+) \|", line)
        if match:
            label = match.group(1)
            key = "cebra" if label.startswith("cebra") else "loop" if "loop" in label else "ours"
            rates[key] = float(match.group(2))
    ok = rc == 0 and {"ours", "cebra"} <= set(rates)
    result = (
        f"ours {rates['ours']:.1f} it/s, cebra {rates['cebra']:.1f} it/s ({rates['ours'] / rates['cebra']:.2f}x)"
        if ok
        else "no table"
    )
    return {"ok": ok, "seconds": seconds, "result": result, "log": out}


def prepared_session(data: Path, date: str = "20161007"):
    """Chewie ``date`` (``YYYYMMDD``; 2016-10-07 by default) M1 (the authors' preprocessed file in
    ``data``) through our reader and ``prepare`` with the default preprocessing; returns
    ``(prepared, labels config)``. Chewie's 2015 sessions are the right hemisphere, 2016 the left."""
    from pipeline.io import read_recording
    from pipeline.preprocess.prepare import prepare_dataset
    from pipeline.stages.config import default_config

    config = default_config()
    session = f"Chewie-{date}"
    ingest = read_recording(
        data / f"Chewie_{date}_neural_con_dis_index.mat",
        fmt="nermat",
        areas=["M1"],
        session=session,
        reader_options={"trial_bins": 40},
    )
    row = {"session_id": session, "subject": "Chewie", "date": f"{date[:4]}-{date[4:6]}-{date[6:]}"}
    row |= {"year": int(date[:4]), "hemisphere": "right" if date.startswith("2015") else "left", "task": "center_out"}
    return prepare_dataset(ingest, session=row, preprocessing=config["preprocessing"]), config["labels"]


def train_and_score(
    prepared, labels, *, device: str, iterations: int, threads: int, seed: int = 0, decoders=("linear",), **params
):
    """NER through the training stage on ``prepared``, then the held-out scores of the workflow's ``decoders``.

    Returns:
        ``(embedding, seconds, {decoder: scores})``: the embedding store, the wall time of the
        training stage and each decoder's held-out score table (``values`` indexed by (target,
        metric)).
    """
    from pipeline.analysis.decoding import Cell, DecoderSpec, within_session
    from pipeline.embed.fit import fit_embedding

    start = time.perf_counter()
    embedding, _ = fit_embedding(
        prepared,
        method="ner",
        params={"max_iterations": iterations, **params},
        area="M1",
        seed=seed,
        labels=labels,
        device={"prefer": device, "allow_cpu": device == "cpu", "wait_s": 0},
        threads=threads,
    )
    seconds = time.perf_counter() - start
    cell = Cell.from_stores(embedding, prepared)
    scores = {name: within_session(cell, DecoderSpec(name))["held_out"].values for name in decoders}
    return embedding, seconds, scores


def step_paper_setting(device: str, data: Path, iterations: int) -> dict:
    """NER through the training stage on the real session, then the linear decoder held out."""
    prepared, labels = prepared_session(data)
    threads = int(os.environ.get("GPU_CHECK_THREADS", "2"))
    embedding, seconds, scores = train_and_score(
        prepared, labels, device=device, iterations=iterations, threads=threads
    )
    linear = scores["linear"]
    device_info = json.loads(embedding.attrs["device"])
    result = (
        f"{iterations} iterations in {seconds:.0f} s ({iterations / embedding.attrs['training_seconds']:.0f} it/s "
        f"training), held-out velocity R² {linear['velocity', 'r2']:.3f} "
        f"(swapped {linear['velocity', 'r2_swapped']:.3f}), "
        f"on {device_info.get('name', device_info['device'])}"
    )
    return {"ok": True, "seconds": seconds, "result": result, "log": json.dumps(device_info)}


def lease_worker(device: str, iterations: int) -> None:
    """One of the two concurrent processes of :func:`step_leases`: lease, train briefly, report."""
    import numpy as np

    from pipeline.embed.device import acquire_device
    from pipeline.embed.methods.ner import NER

    lease = acquire_device(device, allow_cpu=device == "cpu", wait_s=900)
    acquired = time.time()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 60)).astype(np.float32)
    y = np.c_[rng.normal(size=(4000, 2)), rng.integers(0, 8, 4000) * 45.0]
    NER(max_iterations=iterations, seed=0, device=str(lease.device)).fit(x, y)
    released = time.time()
    print(json.dumps({"pid": os.getpid(), "slot": lease.physical_id, "device": str(lease.device),
                      "acquired": acquired, "released": released}))  # fmt: skip
    lease.release()


def step_leases(device: str, quick: bool) -> dict:
    iterations = "50" if quick else "2000"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.gpu_check",
        "--lease-worker",
        "--device",
        device,
        "--iterations",
        iterations,
    ]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=1800) for p in procs]
    seconds = time.perf_counter() - start
    records = []
    for (out, err), proc in zip(outs, procs):
        if proc.returncode != 0:
            return {"ok": False, "seconds": seconds, "result": f"a worker failed: {err.strip()[-300:]}", "log": err}
        records.append(json.loads(out.strip().splitlines()[-1]))
    a, b = sorted(records, key=lambda r: r["acquired"])
    overlap = a["released"] > b["acquired"]
    if device == "cpu":
        ok, what = True, "CPU: no GPU to lease, both ran side by side"
    elif a["slot"] == b["slot"]:
        ok, what = not overlap, f"both on GPU {a['slot']}, one after the other" if not overlap else "SHARED a GPU"
    else:
        ok, what = True, f"GPUs {a['slot']} and {b['slot']}, side by side" if overlap else "on two GPUs"
    return {"ok": ok, "seconds": seconds, "result": what, "log": json.dumps(records)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda when available, else cpu")
    parser.add_argument("--iterations", type=int, default=20000, help="NER iterations of the paper-setting step")
    parser.add_argument("--quick", action="store_true", help="short steps (the CPU exercise of the script)")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--lease-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.lease_worker:
        lease_worker(device, args.iterations)
        return 0
    data = data_dir(args.data)
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    print(f"gpu_check on {name}: torch {torch.__version__}, Python {sys.version.split()[0]}", flush=True)
    iterations = min(args.iterations, 300) if args.quick else args.iterations
    steps = [
        ("cuda-marked tests", lambda: step_tests(device, data)),
        ("rank loss, M = 1024", lambda: step_rank_loss(device, args.quick)),
        ("NER vs cebra training", lambda: step_training(device, data, args.quick)),
        ("NER paper setting", lambda: step_paper_setting(device, data, iterations)),
        ("two jobs leasing GPUs", lambda: step_leases(device, args.quick)),
    ]
    rows = []
    for label, run in steps:
        print(f"-- {label} ...", flush=True)
        try:
            result = run()
        except Exception as exc:  # one failed step must not hide the others' numbers
            result = {"ok": False, "seconds": float("nan"), "result": f"{type(exc).__name__}: {exc}"[:300], "log": ""}
        if not result["ok"]:
            print(result.get("log", "")[-3000:], flush=True)
        rows.append((label, result))
    table = [f"gpu_check on {name} (torch {torch.__version__})", "", "| step | ok | seconds | result |"]
    table += ["| --- | --- | --- | --- |"]
    table += [f"| {label} | {'yes' if r['ok'] else 'NO'} | {r['seconds']:.0f} | {r['result']} |" for label, r in rows]
    text = "\n".join(table) + "\n"
    print("\n" + text)
    for folder in (BUNDLE, Path(os.environ["OUT"]) if os.environ.get("OUT") else None):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "summary.md").write_text(text)
    return 0 if all(r["ok"] for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Does NER's float32 rank loss learn what the float64 path learns? Held-out scores, side by side.

Trains NER on the real Chewie 2016-10-07 M1 session (the authors' preprocessed file through our
reader and ``prepare``, the default preprocessing: 80 % of the trials for training) with the
rank loss in each working precision, for each seed, through the training stage, and decodes the
held-out trials with the linear and the kNN decoder of the workflow (the loader and trainer of
``benchmarks/gpu_check.py``'s paper-setting step). One line of JSON per run, then a table:

    python -m benchmarks.bench_precision [--seeds 0 1 2] [--iterations 20000] [--threads 2]
        [--precisions float64 float32] [--data ../shared/data/real/ner_paper_preprocessed]

Each (precision, seed) can also run alone (``--seeds 1 --precisions float64``), e.g. as parallel
processes with ``--threads 1``, which is how the README's table was measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.gpu_check import data_dir, prepared_session, train_and_score


def run(prepared, labels, precision: str, seed: int, iterations: int, threads: int) -> dict:
    """One training run and its held-out scores."""
    embedding, seconds, scores = train_and_score(
        prepared,
        labels,
        device="cpu",
        iterations=iterations,
        threads=threads,
        seed=seed,
        decoders=("linear", "knn"),
        precision=precision,
        verbose=False,
    )
    linear, knn = scores["linear"], scores["knn"]
    return {
        "precision": precision,
        "seed": seed,
        "iterations": iterations,
        "threads": threads,
        "seconds": round(seconds, 1),
        "training_it_s": round(iterations / embedding.attrs["training_seconds"], 1),
        "linear_velocity_r2": round(float(linear["velocity", "r2"]), 4),
        "knn_velocity_r2": round(float(knn["velocity", "r2"]), 4),
        "linear_position_r2": round(float(linear["position", "r2"]), 4),
        "final_loss": round(float(embedding.attrs["final_loss"]), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precisions", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    parser.add_argument("--data", type=Path, default=None, help="folder of the authors' preprocessed .mat files")
    args = parser.parse_args()
    prepared, labels = prepared_session(data_dir(args.data))
    rows = []
    for seed in args.seeds:
        for precision in args.precisions:
            rows.append(run(prepared, labels, precision, seed, args.iterations, args.threads))
            print(json.dumps(rows[-1]), flush=True)
    print("\n| seed | precision | held-out velocity R² (linear) | (kNN) | position R² (linear) | final loss | it/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['seed']} | {r['precision']} | {r['linear_velocity_r2']:.4f} | {r['knn_velocity_r2']:.4f} "
            f"| {r['linear_position_r2']:.4f} | {r['final_loss']:.5f} | {r['training_it_s']:.1f} |"
        )


if __name__ == "__main__":
    main()

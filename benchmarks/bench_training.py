"""NER training speed against the `cebra` package's own training, side by side in one run.

Both train the paper's model on the same real session (Chewie 2016-10-07 M1, the authors'
preprocessed file, first 80 % of trials): offset1 encoder (N -> 32 -> 32 -> 16 -> 3), batch 512,
Adam lr 1e-4, time-delta positives with time offset 1, labels ``(10 vx, 10 vy, direction)``.

* ``ours``  -- :class:`pipeline.embed.methods.ner.NER` (rank loss over the 1024 embeddings of a batch);
* ``cebra`` -- ``cebra.CEBRA(model_architecture="offset1-model", conditional="time_delta",
  distance="cosine", temperature=1, ...)`` (its InfoNCE over 512 references, 512 positives and
  512 negatives; the loss the authors' NER patch replaces).

Each is timed over its whole ``fit`` (set-up included) after a short warm-up fit, ``--repeats``
times, best kept; ours also reports its training loop alone. ``--full`` additionally trains ours
for the paper's 20 000 iterations and prints the wall time.

    python -m benchmarks.bench_training [--iterations 1000] [--repeats 2] [--threads 2]
        [--device cpu|cuda] [--full] [--profile N] [--data ../shared/data/real/ner_paper_preprocessed]

``--profile N`` first runs ours under ``torch.profiler`` for N iterations and prints the time per
step of each part the training loop labels (main thread: inputs, encoder, loss, backward, Adam,
waiting; batch thread: sampler, label structure).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from pipeline.embed.methods.ner import NER
from pipeline.io.nermat import read_nermat

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real" / "ner_paper_preprocessed"


def load_session(folder: Path):
    """Training bins (trials concatenated) and labels of Chewie 2016-10-07 M1."""
    ds = read_nermat(folder / "Chewie_20161007_neural_con_dis_index.mat", ["M1"], trial_bins=40)
    x = ds["counts"].values.astype(np.float32)  # (trial, bin, unit), already smoothed
    v = ds["velocity"].values
    n_train = int(0.8 * x.shape[0])
    y = np.concatenate(
        [10 * v, np.broadcast_to(np.mod(ds["direction"].values, 360)[:, None, None], v.shape[:2] + (1,))], -1
    )
    return x[:n_train].reshape(-1, x.shape[-1]), y[:n_train].reshape(-1, 3)


def fit_ours(x, y, iterations, device):
    model = NER(max_iterations=iterations, seed=0, device=device)
    start = time.perf_counter()
    model.fit(x, y)
    return time.perf_counter() - start, model.training_seconds_


#: the parts of a training step's main thread, as train_rank labels them
STEP_PARTS = {
    "ner.wait": "waiting for the batch thread",
    "ner.inputs": "indexing the batch's inputs and label structure (GPU only)",
    "ner.encoder": "encoder forward",
    "ner.loss": "rank loss forward (structure given)",
    "ner.backward": "backward (rank loss + encoder)",
    "ner.adam": "Adam step",
}


def profile_ours(x, y, iterations, device):
    """Where a training step's time goes.

    The main thread's parts from ``torch.profiler`` over ``iterations`` of ours (the profiler
    records the thread that starts it); the batch thread's work -- the same sampler and
    ``RankLoss.structure`` calls -- timed directly, one batch after the other.
    """
    from torch.profiler import ProfilerActivity, profile

    from pipeline.embed.nn.losses import RankLoss
    from pipeline.embed.nn.sampling import TimeDeltaSampler

    fit_ours(x, y, 20, device)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _, loop = fit_ours(x, y, iterations, device)
    totals = {e.key: e.cpu_time_total / 1e3 / iterations for e in prof.key_averages() if e.key in STEP_PARTS}
    sampler = TimeDeltaSampler(y, generator=torch.Generator().manual_seed(0))
    loss_fn = RankLoss(precision=NER().precision)
    labels = torch.from_numpy(y)
    sample = structure = 0.0
    for _ in range(iterations):
        t0 = time.perf_counter()
        ref, _pos = sampler.sample(512)
        t1 = time.perf_counter()
        loss_fn.pair_structure(labels[ref], check=False)
        sample, structure = sample + t1 - t0, structure + time.perf_counter() - t1
    print(f"\nprofile of ours, {iterations} iterations ({loop / iterations * 1e3:.2f} ms per step under the profiler):")
    print("| part | ms per step |\n| --- | --- |")
    for key, what in STEP_PARTS.items():
        print(f"| main thread: {what} (`{key}`) | {totals.get(key, 0.0):.2f} |")
    print(f"| batch thread: time-delta sampler | {sample / iterations * 1e3:.2f} |")
    print(f"| batch thread: label structure (`RankLoss.pair_structure`) | {structure / iterations * 1e3:.2f} |")


def fit_cebra(x, y, iterations, device):
    import cebra

    model = cebra.CEBRA(
        model_architecture="offset1-model",
        batch_size=512,
        learning_rate=1e-4,
        temperature=1,
        output_dimension=3,
        max_iterations=iterations,
        distance="cosine",
        conditional="time_delta",
        time_offsets=1,
        device=device,
        verbose=False,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y.astype(np.float32))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true", help="also train ours for 20 000 iterations")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="first profile N iterations of ours")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = load_session(args.data)
    print(
        f"Chewie 2016-10-07 M1: {x.shape[0]} training bins x {x.shape[1]} units; device {args.device}, "
        f"{args.threads} thread(s), torch {torch.__version__}"
    )
    if args.profile:
        profile_ours(x, y, args.profile, args.device)
    fit_ours(x, y, 20, args.device)  # warm-up (allocator, thread pools, kernels)
    fit_cebra(x, y, 20, args.device)
    ours_fit, ours_loop, theirs = [], [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine state
        total, loop = fit_ours(x, y, args.iterations, args.device)
        ours_fit.append(total)
        ours_loop.append(loop)
        theirs.append(fit_cebra(x, y, args.iterations, args.device))
    n = args.iterations
    rate_ours, rate_loop, rate_cebra = n / min(ours_fit), n / min(ours_loop), n / min(theirs)
    print(f"\n{n} iterations, best of {args.repeats}:")
    print("| trainer | whole fit | it/s | vs cebra |")
    print("| --- | --- | --- | --- |")
    print(
        f"| ours (NER rank loss, M = 1024) | {min(ours_fit):.1f} s | {rate_ours:.1f} | {rate_ours / rate_cebra:.2f}x |"
    )
    print(f"| ours, training loop only | {min(ours_loop):.1f} s | {rate_loop:.1f} | {rate_loop / rate_cebra:.2f}x |")
    print(
        f"| cebra {__import__('cebra').__version__} (InfoNCE, 512 + 512 + 512) | {min(theirs):.1f} s "
        f"| {rate_cebra:.1f} | 1.00x |"
    )
    if args.full:
        total, loop = fit_ours(x, y, 20000, args.device)
        print(
            f"\nfull paper setting, 20 000 iterations on {args.device}: {total:.0f} s wall "
            f"({total / 60:.1f} min; loop {20000 / loop:.1f} it/s)"
        )


if __name__ == "__main__":
    main()

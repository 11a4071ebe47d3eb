"""Cross-session decoding without the new session's labels (issue 20): every alignment variant, side by side.

On the authors' own Chewie M1 embeddings (``../shared/data/real/ner_paper_results``: 7 NER sessions,
10 CEBRA-3D sessions), for every ordered pair (A ≠ B) of a method's sessions: the linear decoder is
fitted on A's training trials (``decoding.fit``, ``DecoderSpec("linear")``), A is rotated onto B by
each variant, and the decoder is scored on B's test trials (``decoding.score(..., rotation=R)``).
Columns: mean off-diagonal held-out velocity R² (``r2``, not the paper's swapped one), position R²,
peak direction accuracy (%), the velocity R² split into pairs within one hemisphere (2015 = right,
2016 = left) and across, how many rotations lie within 22.5° of ``leak_free`` (same determinant
sign), and the seconds per pair the fit took.

Variants (``pipeline.analysis.labelfree``; A's side always its training trials):

* ``none`` — identity;
* ``label_free`` (``clusters``, the kept method), ``label_free_icp`` (the same match solved by ICP
  from 48 signed permutations + 16 random starts instead of enumerating the 8! assignments),
  ``label_free_mean``, ``label_free_moments``, ``label_free_transport`` — B's latent only;
* ``label_free_consensus`` — ``clusters`` with every other session except B as a labelled reference;
  ``label_free_consensus_past`` — only the sessions recorded before B (none for the first day, where
  it is ``label_free``);
* ``few_shot_k`` (k = 1, 2, 4, 8: the first k training trials per direction of B) and
  ``few_shot_k_guided`` (the same labelled trials plus B's unlabelled trials);
* ``leak_free`` — all of B's training trials labelled; ``paper`` — the authors' protocol (uses B's
  test labels).

Then the ring-symmetry report of ``label_free``: how B's clusters were assigned relative to their
true (majority) direction — ``identity``, a cyclic ``shift s`` (cluster of direction a+s matched to
direction a) or a ``mirror s`` (a ↔ s−a) — within and across hemispheres, and the relative cost
margin to the next distinct hypothesis when the pick was right or wrong.

BLAS runs single-threaded (``--blas-threads 1``).

    python -m benchmarks.bench_labelfree [--methods NER CEBRA3D] [--no-transport] [--seed 0]
        [--data ../shared/data/real/ner_paper_results]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from pipeline.analysis.alignment import Alignment, align, direction_averages
from pipeline.analysis.decoding import DecoderSpec, fit, score
from pipeline.analysis.labelfree import (
    calibration_trials,
    few_shot,
    hypotheses,
    icp,
    label_free,
    none,
    trajectory_clusters,
)
from tests.support.authors import authors_cell

REAL = Path(os.environ.get("NER_REAL_DATA", Path(__file__).resolve().parents[1].parent / "shared/data/real"))
RESULTS = REAL / "ner_paper_results"
DATES = {
    "NER": ["150313", "150319", "150629", "150630", "161007", "161014", "161021"],
    "CEBRA3D": ["150313", "150319", "150629", "150630", "160929", "161005", "161006", "161007", "161014", "161021"],
}
SHOTS = (1, 2, 4, 8)


def angle(r1: np.ndarray, r2: np.ndarray) -> float:
    """Angle (degrees) of ``r1ᵀ r2``; infinite when the determinants differ in sign."""
    if np.linalg.det(r1) * np.linalg.det(r2) < 0:
        return np.inf
    return float(np.degrees(np.arccos(np.clip((np.trace(r1.T @ r2) - 1) / 2, -1, 1))))


def relation(assignment: np.ndarray, truth: np.ndarray) -> str:
    """How ``assignment`` (cluster matched to each direction) relates to the clusters' true directions."""
    matched = truth[assignment]  # true direction of the cluster matched to direction a
    a = np.arange(len(assignment))
    for s in range(8):
        if np.array_equal(matched, (a + s) % 8):
            return "identity" if s == 0 else f"shift {s}"
        if np.array_equal(matched, (s - a) % 8):
            return f"mirror {s}"
    return "other"


def rotations(a, b, others, seed: int, transport: bool) -> dict[str, tuple[Alignment, float]]:
    """Every variant's alignment of cell ``a`` onto cell ``b`` and the seconds it took."""
    at, bt = a.training_trials(), b.training_trials()
    out = {}

    def timed(name, fn):
        t = time.perf_counter()
        result = fn()
        out[name] = (result, time.perf_counter() - t)

    timed("none", lambda: none(a.latent.shape[-1]))
    timed("label_free", lambda: label_free(at.latent, at.classes, b.latent, seed=seed))

    def by_icp():
        _, means = trajectory_clusters(b.latent, seed=seed)
        return Alignment("label_free_icp", icp(direction_averages(at.latent, at.classes), means, seed=seed).rotation)

    timed("label_free_icp", by_icp)
    for method in ("mean", "moments") + (("transport",) if transport else ()):
        timed(f"label_free_{method}", lambda m=method: label_free(at.latent, at.classes, b.latent, method=m, seed=seed))
    refs = [(o.training_trials().latent, o.training_trials().classes) for o in others]
    timed("label_free_consensus", lambda: label_free(at.latent, at.classes, b.latent, references=refs, seed=seed))
    past = [
        (o.training_trials().latent, o.training_trials().classes)
        for o in others
        if o.meta["session"] < b.meta["session"]
    ]
    timed("label_free_consensus_past", lambda: label_free(at.latent, at.classes, b.latent, references=past, seed=seed))
    for k in SHOTS:
        idx = calibration_trials(b.classes, b.train, k)
        timed(f"few_shot_{k}", lambda i=idx: few_shot(at.latent, at.classes, b.latent, i, b.classes[i]))
        timed(
            f"few_shot_{k}_guided",
            lambda i=idx: few_shot(at.latent, at.classes, b.latent, i, b.classes[i], guided=True, seed=seed),
        )
    timed("leak_free", lambda: align(at.latent, at.classes, bt.latent, bt.classes, "leak_free"))
    timed("paper", lambda: align(a.latent, a.classes, b.latent, b.classes, "paper"))
    return out


def symmetry(a, b, seed: int) -> tuple[str, float, bool]:
    """Relation of ``label_free``'s pick to the truth, its cost margin, and whether it was right."""
    at = a.training_trials()
    labels, means = trajectory_clusters(b.latent, seed=seed)
    truth = np.array([np.bincount(b.classes[labels == c], minlength=8).argmax() for c in range(8)])
    hyps = hypotheses(direction_averages(at.latent, at.classes), means, n=2)
    kind = relation(hyps[0].assignment, truth)
    return kind, hyps[1].cost / hyps[0].cost - 1.0, kind == "identity"


def run(method: str, seed: int, transport: bool) -> None:
    dates = DATES[method]
    cells = {d: authors_cell(method, d, RESULTS) for d in dates}
    decoders = {d: fit(c, DecoderSpec("linear")) for d, c in cells.items()}
    rows = defaultdict(list)  # variant -> (vel, pos, acc, within hemisphere, within 22.5° of leak_free, s)
    sym = defaultdict(Counter)
    margins = defaultdict(list)
    for da, db in itertools.permutations(dates, 2):
        a, b = cells[da], cells[db]
        others = [cells[d] for d in dates if d not in (da, db)]
        fitted = rotations(a, b, others, seed, transport)
        leak = fitted["leak_free"][0].rotation
        same = a.meta["hemisphere"] == b.meta["hemisphere"]
        for variant, (alignment, seconds) in fitted.items():
            s = score(decoders[da], b, b.test, rotation=alignment.rotation).values
            rows[variant].append(
                (
                    s["velocity", "r2"],
                    s["position", "r2"],
                    s["direction", "peak_accuracy"],
                    same,
                    angle(alignment.rotation, leak) < 22.5,
                    seconds,
                )
            )
        kind, margin, right = symmetry(a, b, seed)
        sym["within" if same else "across"][kind] += 1
        margins["right" if right else "wrong"].append(margin)

    paper_vel = np.mean([r[0] for r in rows["paper"]])
    print(f"\n{method}: {len(dates)} sessions, {len(dates) * (len(dates) - 1)} ordered pairs (A≠B); linear decoder")
    head = (
        f"{'variant':26s} {'vel R²':>7s} {'pos R²':>7s} {'peak %':>7s} {'vel within':>10s} {'vel across':>10s}"
        f" {'≈leak_free':>10s} {'/paper':>7s} {'s/pair':>8s}"
    )
    print(head)
    print("-" * len(head))
    for variant, r in rows.items():
        r = np.array(r, dtype=float)
        within, across = r[r[:, 3] == 1], r[r[:, 3] == 0]
        print(
            f"{variant:26s} {r[:, 0].mean():7.3f} {r[:, 1].mean():7.3f} {r[:, 2].mean():7.1f}"
            f" {within[:, 0].mean():10.3f} {across[:, 0].mean():10.3f}"
            f" {int(r[:, 4].sum()):>4d}/{len(r):<5d} {r[:, 0].mean() / paper_vel:7.2f} {r[:, 5].mean():8.4f}"
        )
    print("ring symmetry of label_free (assignment of B's clusters vs their majority direction):")
    for where, counts in sym.items():
        print(f"  {where:7s} hemisphere: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    for what, m in margins.items():
        print(
            f"  cost margin to the next distinct hypothesis when {what}: median {np.median(m):.3f}, "
            f"range {np.min(m):.3f}–{np.max(m):.3f} (n={len(m)})"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["NER", "CEBRA3D"], choices=sorted(DATES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-transport", action="store_true", help="skip the slow transport candidate")
    parser.add_argument("--blas-threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="the ner_paper_results folder")
    args = parser.parse_args(argv)
    global RESULTS
    if args.data is not None:
        RESULTS = args.data
    with threadpool_limits(args.blas_threads):
        for method in args.methods:
            run(method, args.seed, not args.no_transport)


if __name__ == "__main__":
    main()

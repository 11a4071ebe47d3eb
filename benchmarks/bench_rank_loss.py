"""Rank-loss speed: ``pipeline.embed.nn.losses.rank_loss`` vs the O(M^3) formulation, side by side.

Forward + backward wall time (best of ``--repeats``; float32 on the CPU by default) on NER-like
batches: ``M/2`` references with labels ``(10 v_x, 10 v_y, theta)`` (directions on the 45-degree
grid) followed by ``M/2`` positives that carry their reference's label, unit-norm 3-D embeddings.
Columns:

* ``rank_loss``      -- ``rank_loss(z, D)``, ``D = label_distance(y)`` precomputed (duplicate
  labels detected from ``D``), as for the other formulations;
* ``RankLoss``       -- ``RankLoss()(z, y)``: label distances and label groups included (float64
  working precision, the reference path);
* ``RL f32``         -- ``RankLoss(precision="float32")(z, y)``, NER's default, everything included;
* ``f32 struct``     -- its label structure alone (``RankLoss.structure(y)``: label groups, sorted
  label distances, tie weights), which NER's training loop builds in a background thread while the
  previous step runs;
* ``f32 step``       -- ``RankLoss(precision="float32")(z, structure=...)``: what the training step
  itself pays;
* ``sort+lcse``      -- a straightforward O(M^2 log M) version through autograd: sort each row,
  reversed ``logcumsumexp``, ``searchsorted`` for the tie groups (written here for comparison);
* ``O(M^3)``         -- the authors' formulation (written here): a loop over the ``M - 1``
  "positive" columns, one ``M x (M - 1)`` mask of ``D_ik >= D_ij`` per column
  (``--cubic-repeats`` at M <= 512, one repeat above);
* ``InfoNCE``        -- :func:`pipeline.embed.nn.losses.infonce` with ``M/2`` references, ``M/2``
  positives and ``M/2`` negatives.

The losses and gradients are compared with ``O(M^3)`` at the first size (256 by default) and with
``sort+lcse`` and ``RankLoss`` at every size.

    python -m benchmarks.bench_rank_loss [--sizes 256 512 1024] [--repeats 15] [--cubic-repeats 3]
        [--threads N] [--dtype float32|float64] [--device cpu|cuda] [--skip-cubic-above 1024]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from pipeline.embed.nn.losses import RankLoss, infonce, label_distance, rank_loss


def ner_batch(m: int, *, dtype: torch.dtype, device: str, seed: int = 0):
    """Unit-norm 3-D embeddings (``dtype``) and NER-style float64 labels (positives repeat their reference's label)."""
    g = torch.Generator().manual_seed(seed)
    b = m // 2
    vel = torch.randn(b, 2, generator=g, dtype=torch.float64) * 100  # 10 * velocity, cm/s-like
    ang = torch.randint(0, 8, (b, 1), generator=g).to(torch.float64) * 45
    ref = torch.cat([vel, ang], 1)
    labels = torch.cat([ref, ref, ref[: m - 2 * b]])
    z = torch.nn.functional.normalize(torch.randn(m, 3, generator=g, dtype=torch.float64), dim=1)
    return z.to(device=device, dtype=dtype), labels.to(device=device)  # labels float64, as NER's


def cubic_rank_loss(z: torch.Tensor, d: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """O(M^3) formulation: every off-diagonal column once as the positive, with a mask each."""
    m = z.shape[0]
    off = ~torch.eye(m, dtype=torch.bool, device=z.device)
    sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    s = -torch.sqrt(sq[off].clamp_min(1e-12)).view(m, m - 1) / tau  # diagonal dropped
    s = s - s.max(dim=1, keepdim=True).values.detach()  # cancels in the ratio
    e = s.exp()
    d_off = d[off].view(m, m - 1)
    total = z.new_zeros(())
    for col in range(m - 1):
        mask = d_off >= d_off[:, col : col + 1]
        total = total - (s[:, col] - torch.log((e * mask).sum(dim=1))).sum()
    return total / (m * (m - 1))


def sort_lcse_rank_loss(z: torch.Tensor, d: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Straightforward O(M^2 log M) version through autograd (diagonal dropped after sorting)."""
    m = z.shape[0]
    s = -torch.cdist(z, z) / tau
    d_masked = d.clone()
    d_masked.fill_diagonal_(math.inf)
    d_sorted, order = torch.sort(d_masked, dim=1)
    d_sorted, order = d_sorted[:, :-1].contiguous(), order[:, :-1]
    s_sorted = s.gather(1, order)
    suffix = torch.logcumsumexp(s_sorted.flip(1), dim=1).flip(1)
    first = torch.searchsorted(d_sorted, d_sorted, right=False)
    return (suffix.gather(1, first) - s_sorted).sum() / (m * (m - 1))


def fwd_bwd_time(fn, z, *args, repeats: int):
    """Best wall time of ``repeats`` forward + backward calls; also the last loss and gradient."""
    best, loss, grad = math.inf, None, None
    for _ in range(repeats):
        x = z.detach().clone().requires_grad_(True)
        if x.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = fn(x, *args)
        loss.backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
        grad = x.grad
    return best, loss.detach(), grad


def structure_time(module: RankLoss, labels: torch.Tensor, *, repeats: int) -> float:
    """Best wall time of ``repeats`` label-structure builds (``RankLoss.structure``)."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        module.structure(labels)
        if labels.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=15, help="repeats of the fast formulations")
    ap.add_argument("--cubic-repeats", type=int, default=3, help="repeats of O(M^3) at M <= 512 (1 above)")
    ap.add_argument("--skip-cubic-above", type=int, default=1024, help="no O(M^3) timing above this M")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--temperature", type=float, default=1.0)
    args = ap.parse_args()

    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    dtype = getattr(torch, args.dtype)
    tau = args.temperature
    module = RankLoss(temperature=tau)
    module32 = RankLoss(temperature=tau, precision="float32")
    print(f"torch {torch.__version__}, {args.device}, {args.dtype}, {torch.get_num_threads()} threads, tau={tau}")
    print("forward+backward, best of repeats, ms. rank_loss = rank_loss(z, D) with D precomputed;")
    print("RankLoss = RankLoss()(z, labels), label distances and groups included; RL f32 the same in")
    print("float32 working precision, = f32 struct (the labels' structure) + f32 step (given the structure).\n")
    head = (
        f"{'M':>5} {'rank_loss':>10} {'RankLoss':>9} {'sort+lcse':>10} {'O(M^3)':>10} {'InfoNCE':>8} {'RL f32':>8}"
        f" {'f32 struct':>10} {'f32 step':>9}"
        f" | {'O(M^3)/rank_loss':>16} {'sort+lcse/rank_loss':>19} {'rank_loss/InfoNCE':>17}"
    )
    print(head)
    print("-" * len(head))
    checks, precision = [], []
    for i, m in enumerate(args.sizes):
        z, labels = ner_batch(m, dtype=dtype, device=args.device)
        d = label_distance(labels)
        fwd_bwd_time(rank_loss, z, d, tau, repeats=2)  # warm-up (allocator, numpy sort)
        t_ours, l_ours, g_ours = fwd_bwd_time(rank_loss, z, d, tau, repeats=args.repeats)
        t_mod, l_mod, g_mod = fwd_bwd_time(module, z, labels, repeats=args.repeats)
        t_m32, l_m32, g_m32 = fwd_bwd_time(module32, z, labels, repeats=args.repeats)
        t_struct = structure_time(module32, labels, repeats=args.repeats)
        st32 = module32.structure(labels)
        t_step32, _, _ = fwd_bwd_time(lambda x: module32(x, structure=st32), z, repeats=args.repeats)
        t_sort, l_sort, g_sort = fwd_bwd_time(sort_lcse_rank_loss, z, d, tau, repeats=max(1, args.repeats // 2))
        b = m // 2
        zr, zp, zn = z[:b], z[b : 2 * b], ner_batch(m, dtype=dtype, device=args.device, seed=1)[0][:b]
        t_nce, _, _ = fwd_bwd_time(lambda x: infonce(x, zp, zn, tau), zr, repeats=args.repeats)
        if m <= args.skip_cubic_above:
            reps = args.cubic_repeats if m <= 512 else 1
            t_cub, l_cub, g_cub = fwd_bwd_time(cubic_rank_loss, z, d, tau, repeats=reps)
            cub_txt, ratio_txt = f"{t_cub * 1e3:10.1f}", f"{t_cub / t_ours:15.0f}x"
        else:
            l_cub = g_cub = None
            cub_txt, ratio_txt = f"{'-':>10}", f"{'-':>16}"
        print(
            f"{m:5d} {t_ours * 1e3:10.2f} {t_mod * 1e3:9.2f} {t_sort * 1e3:10.2f} {cub_txt} {t_nce * 1e3:8.3f}"
            f" {t_m32 * 1e3:8.2f} {t_struct * 1e3:10.2f} {t_step32 * 1e3:9.2f}"
            f" | {ratio_txt} {t_sort / t_ours:18.1f}x {t_ours / t_nce:16.1f}x",
            flush=True,
        )
        first = i == 0
        checks.append((m, l_ours, l_mod, l_sort, g_ours, g_sort, l_cub if first else None, g_cub if first else None))
        precision.append((m, l_mod, g_mod, l_m32, g_m32))

    print("\nagreement (absolute differences; loss, max over gradient entries):")
    for m, l_ours, l_mod, l_sort, g_ours, g_sort, l_cub, g_cub in checks:
        line = (
            f"  M={m:5d}  loss {l_ours.item():.6f}; RankLoss {abs(l_ours - l_mod).item():.1e}; "
            f"sort+lcse {abs(l_ours - l_sort).item():.1e} / {(g_ours - g_sort).abs().max().item():.1e}"
        )
        if l_cub is not None:
            line += f"; O(M^3) {abs(l_ours - l_cub).item():.1e} / {(g_ours - g_cub).abs().max().item():.1e}"
        print(line)
    print("\nRankLoss(precision='float32') against the float64 path (relative loss difference; max gradient")
    print("difference relative to the largest gradient entry):")
    for m, l64, g64, l32, g32 in precision:
        rel = abs(l32.double() - l64.double()).item() / abs(l64.double()).item()
        grad = ((g32.double() - g64.double()).abs().max() / g64.double().abs().max()).item()
        print(f"  M={m:5d}  loss {rel:.1e}; gradient {grad:.1e}")


if __name__ == "__main__":
    main()

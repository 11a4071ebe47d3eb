"""The NER training loop and batched inference (NER_METHOD.md sections 2.4-3).

One iteration, as the authors ran it through their patched CEBRA solver:

1. the seeded :class:`~pipeline.embed.nn.sampling.TimeDeltaSampler` draws ``B`` reference bins and their
   time-delta positives (the ``B`` "negatives" of CEBRA are not drawn: NER never uses them, and
   skipping them changes no number the loss sees);
2. the encoder embeds the ``2B`` bins (references first, positives second);
3. both halves are labelled with the **reference's** label, and the rank loss of the ``2B``
   embeddings is back-propagated;
4. one Adam step (lr 1e-4, betas (0.9, 0.999), eps 1e-8, no weight decay, no schedule; PyTorch's
   fused implementation on CPUs and GPUs).

The training matrix and its labels live on the training device for the whole run. Everything a
batch needs that does not depend on the weights is prepared by one background thread, two
batches ahead and in draw order (so the random stream is the same as drawing in the loop), while
the current step runs: the sampled indices (drawn from an explicit generator) and, on a CPU, the
batch's encoder inputs and the loss's label structure
(:meth:`~pipeline.embed.nn.losses.RankLoss.pair_structure`: sorted label distances and tie
weights). On a GPU the indices cross over from pinned memory without blocking
and the device builds the structure from its resident labels. The loss of every iteration is
kept (one device-to-host copy every ``sync_every`` iterations), so a GPU step never waits for the
host. Progress goes through ``tqdm`` to ``stderr``, which workflow jobs
route into their log file.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.autograd.profiler import record_function
from tqdm.auto import tqdm

from pipeline.embed.nn.encoders import Encoder, windows
from pipeline.embed.nn.losses import RankLoss, RankStructure
from pipeline.embed.nn.sampling import TimeDeltaSampler

__all__ = ["TrainingHistory", "embed", "train_rank"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingHistory:
    """What a training run leaves behind besides the weights.

    Attributes:
        loss: ``(iterations,)`` float64 loss of every iteration.
        seconds: wall time of the loop (excluding set-up).
        iterations_per_s: ``len(loss) / seconds``.
    """

    loss: np.ndarray
    seconds: float

    @property
    def iterations_per_s(self) -> float:
        """Training speed."""
        return len(self.loss) / self.seconds if self.seconds > 0 else float("inf")


def _batch_inputs(x: Tensor, encoder: Encoder, idx: Tensor, lengths: Sequence[int] | None) -> Tensor:
    """The encoder inputs of bins ``idx``: rows for a single-bin encoder, windows otherwise."""
    if encoder.receptive_field == (0, 1):
        return x[idx]
    return windows(x, encoder.receptive_field, index=idx, lengths=lengths)


class _Prefetch:
    """Runs ``make()`` ``n`` times in one background thread, ``depth`` calls ahead, results in order.

    One worker keeps the calls sequential, so a seeded sampler inside ``make`` draws exactly as it
    would in the loop.
    """

    def __init__(self, make: Callable[[], object], n: int, depth: int = 2) -> None:
        self._make, self._left = make, n
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ner-batches")
        self._queue: deque[Future] = deque()
        for _ in range(min(depth, n)):
            self._submit()

    def _submit(self) -> None:
        self._queue.append(self._pool.submit(self._make))
        self._left -= 1

    def next(self) -> object:
        """The next result (re-raises the background exception, if any)."""
        future = self._queue.popleft()
        if self._left > 0:
            self._submit()
        return future.result()

    def close(self) -> None:
        """Drop what is still queued and stop the thread."""
        for future in self._queue:
            future.cancel()
        self._pool.shutdown(wait=True)


def train_rank(
    encoder: Encoder,
    x: Tensor,
    labels: Tensor,
    sampler: TimeDeltaSampler,
    *,
    iterations: int,
    batch_size: int = 512,
    learning_rate: float = 1e-4,
    loss_fn: RankLoss | None = None,
    lengths: Sequence[int] | None = None,
    progress: bool = True,
    sync_every: int = 100,
) -> TrainingHistory:
    """Train ``encoder`` in place with the NER rank loss.

    Args:
        encoder: the model, already on the device of ``x`` and freshly initialised by the caller
            (the caller owns the seed of the initial weights).
        x: ``(T, N)`` training inputs (bins of the training trials, trials concatenated), on the
            training device.
        labels: ``(T, C)`` training labels on the same device (NER: ``(10 vx, 10 vy, angle)``).
        sampler: the positive sampler built on the same labels (CPU, seeded generator).
        iterations: number of Adam steps.
        batch_size: references per step ``B`` (the loss sees ``M = 2B`` embeddings).
        learning_rate: Adam learning rate.
        loss_fn: the loss module; default :class:`RankLoss` with ``tau = 1`` and angle column 2.
        lengths: bins per trial (for encoders with context, so windows stay inside a trial).
        progress: show a tqdm bar on stderr.
        sync_every: iterations between host copies of the loss history.

    Returns:
        :class:`TrainingHistory` with the loss of every iteration.

    Raises:
        ValueError: shapes or devices disagree, or the loss becomes non-finite (the message names
            the iteration).
    """
    if x.dim() != 2 or labels.dim() != 2 or x.shape[0] != labels.shape[0]:
        raise ValueError(f"x (T, N) and labels (T, C) must share T; got {tuple(x.shape)} and {tuple(labels.shape)}")
    if x.shape[0] != sampler.n_bins:
        raise ValueError(f"the sampler was built on {sampler.n_bins} bins but x has {x.shape[0]}")
    if x.device != labels.device:
        raise ValueError(f"x is on {x.device} but labels are on {labels.device}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    device = x.device
    loss_fn = loss_fn or RankLoss()
    # The fused kernel (one per parameter tensor) is the same update as the loop of small ops,
    # about 4x cheaper on a CPU (0.14 vs 0.52 ms per step for the offset1 encoder); where this
    # torch has none for the device (CPUs before torch 2.4), the loop.
    adam = {"lr": learning_rate, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    try:
        optimizer = torch.optim.Adam(encoder.parameters(), fused=True, **adam)
    except RuntimeError:
        optimizer = torch.optim.Adam(encoder.parameters(), **adam)
    encoder.train()
    history = np.empty(iterations, dtype=np.float64)
    pending: list[Tensor] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if pending:
            values = torch.stack(pending).double().cpu().numpy()
            if not np.isfinite(values).all():
                bad = done + int(np.flatnonzero(~np.isfinite(values))[0])
                raise ValueError(f"the loss became non-finite at iteration {bad}")
            history[done : done + len(values)] = values
            done += len(values)
            pending.clear()

    # The label structure of a batch: on the CPU built by the batch thread; on a GPU by the device
    # itself from the resident labels (a few sorts there, queued without a host synchronisation).
    on_cpu = device.type == "cpu"
    labels_cpu = labels.detach().cpu() if on_cpu else None

    def make_batch() -> tuple[Tensor, RankStructure | None]:
        """A CPU batch: (encoder inputs, label structure); a GPU batch: (pinned indices, None)."""
        with record_function("ner.sample"):
            ref, pos = sampler.sample(batch_size)
            idx = torch.cat([ref, pos])
        if not on_cpu:
            return idx.pin_memory(), None
        with record_function("ner.structure"):  # positives carry their reference's label
            return _batch_inputs(x, encoder, idx, lengths), loss_fn.pair_structure(labels_cpu[ref], check=False)

    bar = tqdm(
        total=iterations, desc="NER", unit="it", file=sys.stderr, disable=not progress, mininterval=10.0, smoothing=0.05
    )
    batches = _Prefetch(make_batch, iterations)
    # On a CPU the float32 step is short enough that the batch thread needs a core of its own:
    # the step's torch ops get the others (measured on 2 cores: 1 + 1 threads ~110 it/s, 2 + 1
    # ~80 it/s: the busy-waiting OpenMP threads starve the batch thread). The float64 step is
    # long enough for the batch thread to fit in its gaps (2 + 1: ~60 it/s, 1 + 1: ~38 it/s).
    threads = torch.get_num_threads()
    if device.type == "cpu" and threads > 1 and getattr(loss_fn, "precision", None) == "float32":
        torch.set_num_threads(threads - 1)
    start = time.perf_counter()
    try:
        for step in range(iterations):
            # The labels name the parts of a step in a torch.profiler trace (bench_training --profile).
            with record_function("ner.wait"):
                inputs, structure = batches.next()
            if structure is None:  # on a GPU: inputs are the indices, the device indexes and sorts
                with record_function("ner.inputs"):
                    idx = inputs.to(device, non_blocking=True)
                    inputs = _batch_inputs(x, encoder, idx, lengths)
                    structure = loss_fn.pair_structure(labels[idx[:batch_size]], check=False)
            with record_function("ner.encoder"):
                z = encoder(inputs)
            with record_function("ner.loss"):
                loss = loss_fn(z, structure=structure)
            with record_function("ner.backward"):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            with record_function("ner.adam"):
                optimizer.step()
            pending.append(loss.detach())
            if len(pending) >= sync_every or step == iterations - 1:
                flush()
                bar.update(done - bar.n)
                bar.set_postfix(loss=f"{history[done - 1]:.4f}", refresh=False)
    finally:
        batches.close()
        torch.set_num_threads(threads)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    bar.close()
    log.info(
        "trained %d iterations in %.1f s (%.1f it/s) on %s; final loss %.4f",
        iterations,
        seconds,
        iterations / seconds,
        device,
        history[-1],
    )
    return TrainingHistory(loss=history, seconds=seconds)


@torch.no_grad()
def embed(encoder: Encoder, x: Tensor, *, lengths: Sequence[int] | None = None, chunk: int = 65536) -> Tensor:
    """Embed every bin of ``x`` in eval mode, ``chunk`` bins at a time.

    Args:
        encoder: a trained encoder on the device of ``x``.
        x: ``(T, N)`` inputs (trials concatenated).
        lengths: bins per trial, so context windows stay inside a trial (ignored by offset1).
        chunk: bins per forward pass.

    Returns:
        ``(T, d)`` embeddings on the device of ``x``.
    """
    was_training = encoder.training
    encoder.eval()
    try:
        parts = [
            encoder(_batch_inputs(x, encoder, idx, lengths))
            for idx in torch.arange(x.shape[0], device=x.device).split(chunk)
        ]
    finally:
        encoder.train(was_training)
    return torch.cat(parts) if parts else x.new_zeros((0, encoder.n_output))

"""piVAE (Zhou & Wei, NeurIPS 2020) as an sklearn-style estimator (NER_METHOD.md section 8.2).

The conv variant the NER authors ran (CEBRA's ``third_party/pivae``), re-written in PyTorch:

* **label prior** ``p(z | u) = N(lambda_mu(u), diag exp lambda_logvar(u))`` from an MLP
  ``dim_u -> 20 -> 20 -> 2 d`` (tanh, tanh, linear) on the continuous label ``u``
  (``(10 vx, 10 vy, direction)``), by default standardised with the training mean and standard
  deviation (stored in the checkpoint) so the degrees column does not saturate the tanh units;
* **encoder** ``q(z | x) = N(mu(x), diag exp logvar(x))``: two separate offset10 conv nets
  (:class:`~pipeline.embed.nn.encoders.Offset10Encoder` without the sphere projection) on the 10-bin
  window ``t - 5 ... t + 4``, **zero-padded** beyond the edges of the sequence it is cut from
  (each trial by default, see the protocols below);
* **decoder**: a volume-preserving flow (GIN): the first 'nflow' layer lifts ``z`` to the ``N``
  observed neurons (the window's ``10 N`` values with ``reconstruct="window"``) as
  ``[z, MLP(z)]``, then ``n_blk`` blocks of two (permutation, affine coupling) pairs with fixed
  random permutations, log-scales clamped by ``0.1 tanh`` and made to sum to zero (so
  ``log |det J| = 0``), then softplus firing rates;
* **posterior** = the product ``q(z | x) p(z | u)`` (precision-weighted mean), which is also the
  embedding, so the labels are needed at test time too (``uses_labels_at_transform``);
* **loss** = Poisson NLL of the centre bin (of the window with ``reconstruct="window"``) +
  ``KL(posterior || p(z | u))``, one reparameterised sample per bin, averaged over the batch.

The inputs are Gaussian-smoothed counts, not integers: the Poisson NLL is used in its continuous
form ``rate - x log(rate)`` (the ``log x!`` term is constant in the parameters and dropped), exactly
what Keras' ``poisson`` loss of the original computes.

Training follows the authors' config: Adam with lr 2.5e-4, batches of 200 *contiguous* bins (the
order of the batches is shuffled every epoch), 50 epochs, and the weights of the epoch with the
lowest validation loss are kept (``validation_fraction=0`` trains on all bins and keeps the last
epoch). The validation loss is deterministic: the decoder sees the posterior mean, not a sample.

Protocols (``protocol``). The workflow hands ``fit`` the training trials only (the first 80 % of
the session's trials, chronological) and ``transform`` every trial. Two ways to run piVAE on that:

``"ours"`` (default)
    ``split="bins"``: the last ``validation_fraction`` (0.25) of the training *bins* validate (a
    trial may be cut); ``windows="within_trials"``: every window stays inside its trial, zero-padded
    at the trial's edges (at fit and at transform); ``reconstruct="centre_bin"``: the decoder
    outputs the ``N`` rates of the centre bin (hidden width ``gen_nodes``);
    ``standardize_labels=True``.
``"paper"`` (the authors' notebook ``Fig3_Batch_M1_piVAE``, on CEBRA's ``conv_pi_vae.py``)
    The authors split the session's bins 60/20/20 train/validation/test, chronological, in whole
    trials. Inside ``fit`` that is ``split="trials"``: the first 75 % of the training trials train
    and the last ``round(validation_fraction x trials)`` whole trials validate (60/20 of the
    session; the workflow's last 20 % of trials are the test); ``windows="across_trials"``: the
    10-bin windows are cut from the *concatenated* bins of each block (the training block, the
    validation block, the bins given to ``transform``), so a trial's first bins read the previous
    trial's last bins; only a block's two ends are zero-padded; ``reconstruct="window"``: the
    decoder outputs the whole 10-bin window (``10 N`` rates; the flow is ``10 N``-dimensional with
    hidden width ``10 N // 4``, as ``conv_vae_mdl`` builds it: it never passes ``gen_nodes`` to the
    decoder, so ``gen_nodes`` is unused) and the Poisson NLL sums over the window (zero-padded
    positions excluded); ``standardize_labels=False``: the raw ``(10 vx, 10 vy, degrees)`` go into
    the tanh prior MLP, as in the authors' ``z_prior_nn``. Not reproduced: Keras' Glorot
    initialisation, the tanh approximation of GELU, Keras' flow layout (one permutation per block
    and a half swap between its two couplings; here a permutation before every coupling), and the
    direction column's range (the authors' files hold -180...135 degrees, our labels 0...315).

Each component is also an argument (``split``, ``windows``, ``reconstruct``,
``standardize_labels``); ``None`` (the default) takes the protocol's, a value overrides it, which
is how ``benchmarks/bench_pivae_protocol.py`` changes one difference at a time.

Every random choice comes from ``seed`` (weights and flow permutations, batch order, the
reparameterisation noise: three streams from :func:`~pipeline.embed.methods.ner.seed_streams`, the last
two drawn on the CPU so any device sees the same numbers), without touching torch's or numpy's
global random state. The same seed on the same device and library versions gives bit-identical
embeddings on the CPU; CUDA kernels may add rounding-level differences.

Example:
    >>> model = PiVAE(epochs=5, seed=1).fit(X_train, y_train, lengths=lengths)  # doctest: +SKIP
    >>> z = model.transform(X_test, y=y_test, lengths=test_lengths)              # (T, 3) float32
    >>> paper = PiVAE(protocol="paper").fit(X_train, y_train, lengths=lengths)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from pipeline.embed.methods.base import (
    EmbeddingMethod,
    array_writer,
    check_inputs,
    load_array,
    load_weights,
    read_checkpoint,
    seed_streams,
    state_dict_writer,
    write_checkpoint,
)
from pipeline.embed.nn.encoders import Offset10Encoder, windows

__all__ = [
    "AffineCoupling",
    "GINDecoder",
    "GINFlow",
    "LabelPrior",
    "PROTOCOLS",
    "PiVAE",
    "PiVAENetwork",
    "gaussian_kl",
    "gaussian_product",
]

#: context window of the encoder: bin t sees t - 5 ... t + 4
RECEPTIVE_FIELD = (5, 5)
#: bins per forward pass at validation and transform time
_CHUNK = 8192
#: protocol name -> its components (each also a :class:`PiVAE` argument that overrides it; module docstring)
PROTOCOLS: dict[str, dict[str, str | bool]] = {
    "ours": {"split": "bins", "windows": "within_trials", "reconstruct": "centre_bin", "standardize_labels": True},
    "paper": {"split": "trials", "windows": "across_trials", "reconstruct": "window", "standardize_labels": False},
}
#: component -> its allowed values
_COMPONENTS: dict[str, tuple] = {
    "split": ("bins", "trials"),
    "windows": ("within_trials", "across_trials"),
    "reconstruct": ("centre_bin", "window"),
    "standardize_labels": (True, False),
}


def gaussian_product(mean_a: Tensor, logvar_a: Tensor, mean_b: Tensor, logvar_b: Tensor) -> tuple[Tensor, Tensor]:
    """Normalised product of two diagonal Gaussians ``N(a) N(b) / Z``.

    Variance ``va vb / (va + vb)`` (precisions add), mean ``(ma vb + mb va) / (va + vb)`` (the
    precision-weighted mean), computed in log space so large or tiny variances do not overflow.

    Returns:
        ``(mean, logvar)`` of the product.
    """
    weight_a = torch.sigmoid(logvar_b - logvar_a)  # vb / (va + vb)
    mean = weight_a * mean_a + (1.0 - weight_a) * mean_b
    logvar = logvar_a + logvar_b - torch.logaddexp(logvar_a, logvar_b)
    return mean, logvar


def gaussian_kl(mean_q: Tensor, logvar_q: Tensor, mean_p: Tensor, logvar_p: Tensor) -> Tensor:
    """``KL(N(mean_q, exp logvar_q) || N(mean_p, exp logvar_p))`` of diagonal Gaussians, summed over the last dim."""
    ratio = torch.exp(logvar_q - logvar_p) + (mean_q - mean_p).square() * torch.exp(-logvar_p)
    return 0.5 * (ratio - 1.0 + logvar_p - logvar_q).sum(-1)


class LabelPrior(nn.Module):
    """``p(z | u)``: mean and log-variance of the latent from a continuous label.

    ``(u - label_mean) / label_scale -> Linear(C, H) -> tanh -> Linear(H, H) -> tanh ->
    Linear(H, 2 d)``; the standardisation constants are buffers (set from the training labels).

    Args:
        n_labels: label columns ``C``.
        n_latent: latent dimension ``d``.
        n_hidden: hidden width ``H`` (20 in piVAE).
    """

    def __init__(self, n_labels: int, n_latent: int, n_hidden: int = 20):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_labels, n_hidden),
            nn.Tanh(),
            nn.Linear(n_hidden, n_hidden),
            nn.Tanh(),
            nn.Linear(n_hidden, 2 * n_latent),
        )
        self.register_buffer("label_mean", torch.zeros(n_labels))
        self.register_buffer("label_scale", torch.ones(n_labels))

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """``(batch, C)`` labels -> ``(mean, logvar)``, each ``(batch, d)``."""
        mean, logvar = self.net((u - self.label_mean) / self.label_scale).chunk(2, dim=-1)
        return mean, logvar


class AffineCoupling(nn.Module):
    """Volume-preserving affine coupling layer of GIN.

    The first ``n_dims // 2`` coordinates pass unchanged and parameterise, through
    ``Linear -> ReLU -> Linear -> ReLU -> Linear``, a shift ``t`` and a log-scale ``s`` of the
    others: ``y2 = x2 * exp(s) + t``. ``s`` is ``0.1 tanh`` of ``n - 1`` free outputs plus a last
    entry minus their sum, so ``sum(s) = log |det J| = 0``.

    Args:
        n_dims: dimension of the flow (>= 2).
        n_hidden: hidden width of the scale/shift network.
    """

    def __init__(self, n_dims: int, n_hidden: int):
        super().__init__()
        if n_dims < 2:
            raise ValueError(f"a coupling layer needs at least 2 dimensions, got {n_dims}")
        self.n_keep = n_dims // 2
        self.n_change = n_dims - self.n_keep
        self.net = nn.Sequential(
            nn.Linear(self.n_keep, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, 2 * self.n_change - 1),
        )

    def scale_shift(self, keep: Tensor) -> tuple[Tensor, Tensor]:
        """Zero-sum log-scale ``s`` and shift ``t`` (each ``(batch, n_change)``) from the kept half."""
        st = self.net(keep)
        free = 0.1 * torch.tanh(st[:, : self.n_change - 1])
        log_scale = torch.cat([free, -free.sum(1, keepdim=True)], dim=1)
        return log_scale, st[:, self.n_change - 1 :]

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, n_dims) -> (batch, n_dims)``."""
        keep, change = x[:, : self.n_keep], x[:, self.n_keep :]
        log_scale, shift = self.scale_shift(keep)
        return torch.cat([keep, change * torch.exp(log_scale) + shift], dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        """Exact inverse of :meth:`forward`."""
        keep, change = y[:, : self.n_keep], y[:, self.n_keep :]
        log_scale, shift = self.scale_shift(keep)
        return torch.cat([keep, (change - shift) * torch.exp(-log_scale)], dim=1)


class GINFlow(nn.Module):
    """``n_blk`` GIN blocks, each two (fixed permutation, :class:`AffineCoupling`) pairs.

    The permutations are drawn with torch's current random state at construction (build the
    module under a seeded :func:`torch.random.fork_rng`) and kept as buffers, so a checkpoint
    restores them.

    Args:
        n_dims: dimension of the flow.
        n_hidden: hidden width of the coupling networks.
        n_blk: number of blocks.
    """

    def __init__(self, n_dims: int, n_hidden: int, n_blk: int):
        super().__init__()
        n_layers = 2 * n_blk
        self.couplings = nn.ModuleList(AffineCoupling(n_dims, n_hidden) for _ in range(n_layers))
        self.register_buffer("permutations", torch.stack([torch.randperm(n_dims) for _ in range(n_layers)]))

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, n_dims) -> (batch, n_dims)``, volume preserving."""
        for perm, coupling in zip(self.permutations, self.couplings):
            x = coupling(x[:, perm])
        return x

    def inverse(self, y: Tensor) -> Tensor:
        """Exact inverse of :meth:`forward`."""
        for perm, coupling in zip(reversed(self.permutations), reversed(self.couplings)):
            y = coupling.inverse(y)[:, torch.argsort(perm)]
        return y


class GINDecoder(nn.Module):
    """``z -> [z, MLP(z)] -> GINFlow -> softplus``: firing rates of ``N`` neurons.

    Args:
        n_latent: latent dimension ``d``.
        n_outputs: number of neurons ``N`` (> ``d``).
        n_hidden: hidden width of the lifting MLP and the couplings (``gen_nodes``).
        n_blk: GIN blocks.
    """

    def __init__(self, n_latent: int, n_outputs: int, n_hidden: int, n_blk: int):
        super().__init__()
        if n_outputs <= n_latent:
            raise ValueError(
                f"piVAE needs more neurons ({n_outputs}) than latent dimensions ({n_latent}); "
                f"got n_features = {n_outputs}"
            )
        self.lift = nn.Sequential(
            nn.Linear(n_latent, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, n_outputs - n_latent),
        )
        self.flow = GINFlow(n_outputs, n_hidden, n_blk)

    def forward(self, z: Tensor) -> Tensor:
        """``(batch, d)`` latents -> ``(batch, N)`` positive rates."""
        return F.softplus(self.flow(torch.cat([z, self.lift(z)], dim=1)))


class PiVAENetwork(nn.Module):
    """The piVAE model: two offset10 encoders, :class:`LabelPrior` and :class:`GINDecoder`.

    Args:
        n_inputs: neurons ``N``.
        n_labels: label columns ``C``.
        n_latent: latent dimension ``d``.
        n_hidden: channels of the conv encoders.
        gen_nodes: hidden width of the decoder (``reconstruct="centre_bin"`` only).
        n_blk: GIN blocks.
        prior_hidden: hidden width of the label prior.
        reconstruct: ``"centre_bin"`` (the decoder outputs the ``N`` rates of bin ``t``) or
            ``"window"`` (the ``10 N`` rates of the whole window, hidden width ``10 N // 4``: the
            authors' conv decoder).
    """

    def __init__(
        self,
        n_inputs: int,
        n_labels: int,
        n_latent: int,
        n_hidden: int,
        gen_nodes: int,
        n_blk: int,
        prior_hidden: int,
        reconstruct: str = "centre_bin",
    ):
        super().__init__()
        self.reconstruct = reconstruct
        self.encoder_mean = Offset10Encoder(n_inputs, n_hidden, n_latent, normalize=False)
        self.encoder_logvar = Offset10Encoder(n_inputs, n_hidden, n_latent, normalize=False)
        self.prior = LabelPrior(n_labels, n_latent, prior_hidden)
        if reconstruct == "window":
            n_outputs = n_inputs * sum(RECEPTIVE_FIELD)
            self.decoder = GINDecoder(n_latent, n_outputs, n_outputs // 4, n_blk)
        else:
            self.decoder = GINDecoder(n_latent, n_inputs, gen_nodes, n_blk)

    def posterior(self, context: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``q(z | x) p(z | u)`` of ``(batch, N, 10)`` windows and ``(batch, C)`` labels.

        Returns:
            ``(post_mean, post_logvar, prior_mean, prior_logvar)``, each ``(batch, d)``.
        """
        prior_mean, prior_logvar = self.prior(u)
        post_mean, post_logvar = gaussian_product(
            self.encoder_mean(context), self.encoder_logvar(context), prior_mean, prior_logvar
        )
        return post_mean, post_logvar, prior_mean, prior_logvar

    def loss(self, context: Tensor, u: Tensor, noise: Tensor | None = None, inside: Tensor | None = None) -> Tensor:
        """Per-bin negative ELBO: Poisson NLL of the centre bin (or the window) + KL(posterior || label prior).

        Args:
            context: ``(batch, N, 10)`` windows; the centre bin ``t`` is at position 5.
            u: ``(batch, C)`` labels.
            noise: ``(batch, d)`` standard normal draws for the reparameterised sample, or None
                to decode the posterior mean (deterministic validation loss).
            inside: ``(batch, 10)`` bool, the window positions that are real bins (not padding);
                with ``reconstruct="window"`` only those count (None: all).

        Returns:
            ``(batch,)`` losses.
        """
        post_mean, post_logvar, prior_mean, prior_logvar = self.posterior(context, u)
        z = post_mean if noise is None else post_mean + torch.exp(0.5 * post_logvar) * noise
        rate = self.decoder(z)
        if self.reconstruct == "window":
            # the flat output is (10, N) bins x neurons, as Keras' Reshape((time_window, dim_x))
            rate = rate.view(len(z), context.shape[2], context.shape[1]).transpose(1, 2)
            nll = F.poisson_nll_loss(rate, context, log_input=False, full=False, eps=1e-7, reduction="none")
            if inside is not None:
                nll = nll * inside[:, None, :]
            nll = nll.sum((1, 2))
        else:
            counts = context[:, :, RECEPTIVE_FIELD[0]]
            nll = F.poisson_nll_loss(rate, counts, log_input=False, full=False, eps=1e-7, reduction="none").sum(1)
        return nll + gaussian_kl(post_mean, post_logvar, prior_mean, prior_logvar)


def _segments(lengths: Sequence[int] | None, n_bins: int) -> list[int]:
    """Bins per trial as a list of ints summing to ``n_bins`` (one segment when None)."""
    if lengths is None:
        return [n_bins]
    try:
        seg = [int(v) for v in lengths]
    except (TypeError, ValueError):
        raise ValueError(f"lengths must be a sequence of integers, got {lengths!r}") from None
    if not seg or min(seg) < 1 or sum(seg) != n_bins:
        raise ValueError(f"lengths must be positive integers summing to the {n_bins} bins of X")
    return seg


def _inside_trial(lengths: list[int], device: torch.device) -> Tensor:
    """``(T, 10)`` bool: which window positions of each bin lie inside its trial (the rest are zeroed)."""
    n_bins = sum(lengths)
    position = torch.arange(n_bins, device=device)
    clamped = windows(position[:, None], RECEPTIVE_FIELD, lengths=lengths)[:, 0, :]
    wanted = position[:, None] + torch.arange(-RECEPTIVE_FIELD[0], RECEPTIVE_FIELD[1], device=device)
    return clamped == wanted


def _context(x: Tensor, index: Tensor, lengths: list[int], inside: Tensor) -> Tensor:
    """Zero-padded ``(len(index), N, 10)`` windows of bins ``index`` that stay within trials."""
    return windows(x, RECEPTIVE_FIELD, index=index, lengths=lengths) * inside[index][:, None, :]


def _split_validation(lengths: list[int], n_val: int) -> tuple[list[int], list[int]]:
    """Trial lengths of the first ``sum - n_val`` bins and of the last ``n_val`` (a straddling trial is cut)."""
    ends = np.cumsum(lengths)
    starts, cut = ends - np.asarray(lengths), int(ends[-1]) - n_val
    train = [int(min(e, cut) - s) for s, e in zip(starts, ends) if s < cut]
    val = [int(e - max(s, cut)) for s, e in zip(starts, ends) if e > cut]
    return train, val


def _window_segments(windows: str, lengths: list[int]) -> list[int]:
    """The sequences windows are cut from: each trial (``"within_trials"``) or all bins at once."""
    return [sum(lengths)] if windows == "across_trials" and lengths else lengths


@torch.no_grad()
def _mean_loss(network: PiVAENetwork, x: Tensor, u: Tensor, lengths: list[int], inside: Tensor) -> float:
    """Deterministic (posterior-mean) loss averaged over all bins of ``x``."""
    total = sum(
        float(network.loss(_context(x, idx, lengths, inside), u[idx], inside=inside[idx]).sum())
        for idx in torch.arange(x.shape[0], device=x.device).split(_CHUNK)
    )
    return total / x.shape[0]


class PiVAE(EmbeddingMethod):
    """piVAE embedding: the label-conditioned VAE's posterior mean (uses labels at transform too).

    Args:
        output_dimension: latent dimension ``d`` (``dim_z=3``).
        hidden_units: channels of the offset10 conv encoders (32).
        gen_nodes: hidden width of the GIN decoder (60).
        n_blk: GIN blocks, each two coupling layers (2).
        prior_hidden: hidden width of the label prior MLP (20).
        batch_size: contiguous bins per batch (200).
        learning_rate: Adam learning rate (2.5e-4).
        epochs: passes over the training bins (50).
        validation_fraction: last fraction of the training bins (``split="bins"``) or trials
            (``split="trials"``) held out to pick the best epoch (0.25, i.e. the paper's 20 % of
            all trials when 80 % are training; 0 disables).
        protocol: ``"ours"`` or ``"paper"`` (the authors' split, windows, decoder and labels;
            module docstring).
        split: ``"bins"`` or ``"trials"``: how the validation part is cut (None: the protocol's).
        windows: ``"within_trials"`` or ``"across_trials"`` (None: the protocol's).
        reconstruct: ``"centre_bin"`` or ``"window"`` (None: the protocol's).
        standardize_labels: standardise the labels before the prior MLP (None: the protocol's).
        seed: the one seed of every random choice.
        device: torch device to train and embed on (``"cpu"``, ``"cuda:0"``, ...).
        verbose: show a tqdm progress bar over epochs on stderr.

    Attributes (after ``fit``):
        network_: the trained :class:`PiVAENetwork` (eval mode).
        loss_: ``(epochs * batches,)`` training loss of every iteration.
        val_loss_: ``(epochs,)`` validation loss after every epoch (empty without validation).
        best_epoch_: 1-based epoch whose weights were kept.
        protocol_: the components used (``split``, ``windows``, ``reconstruct``, ``standardize_labels``).
        n_train_bins_: the first bins of ``X``, those trained on.
        n_validation_bins_: the last bins of ``X``, those that picked the epoch.
        training_seconds_: wall time of the training loop.
        n_features_in_: number of input features (neurons).
        n_labels_in_: number of label columns.
    """

    name: ClassVar[str] = "pivae"
    uses_labels_at_transform: ClassVar[bool] = True
    trainable_on_gpu: ClassVar[bool] = True

    def __init__(
        self,
        *,
        output_dimension: int = 3,
        hidden_units: int = 32,
        gen_nodes: int = 60,
        n_blk: int = 2,
        prior_hidden: int = 20,
        batch_size: int = 200,
        learning_rate: float = 2.5e-4,
        epochs: int = 50,
        validation_fraction: float = 0.25,
        protocol: str = "ours",
        split: str | None = None,
        windows: str | None = None,
        reconstruct: str | None = None,
        standardize_labels: bool | None = None,
        seed: int = 0,
        device: str = "cpu",
        verbose: bool = False,
    ):
        self.output_dimension = output_dimension
        self.hidden_units = hidden_units
        self.gen_nodes = gen_nodes
        self.n_blk = n_blk
        self.prior_hidden = prior_hidden
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.protocol = protocol
        self.split = split
        self.windows = windows
        self.reconstruct = reconstruct
        self.standardize_labels = standardize_labels
        self.seed = seed
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit / transform
    def _check_params(self) -> None:
        for name in ("output_dimension", "hidden_units", "gen_nodes", "n_blk", "prior_hidden", "batch_size", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if not float(self.learning_rate) > 0.0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        self._components()

    def _components(self) -> dict[str, str | bool]:
        """The protocol's components with this estimator's overrides (ValueError on a bad value)."""
        if not isinstance(self.protocol, str) or self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {self.protocol!r}")
        parts = dict(PROTOCOLS[self.protocol])
        for name, allowed in _COMPONENTS.items():
            value = getattr(self, name)
            if value is None:
                continue
            kind = (bool, np.bool_) if isinstance(allowed[0], bool) else str
            if not isinstance(value, kind) or value not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)} or None (the protocol's), got {value!r}")
            parts[name] = bool(value) if kind is not str else value
        return parts

    def _n_validation(self, lengths: list[int], split: str) -> int:
        """Bins of the validation part (the last ones) for ``split``."""
        fraction, n_bins = float(self.validation_fraction), sum(lengths)
        if fraction == 0.0:
            return 0
        if split == "trials":
            n_trials = round(fraction * len(lengths))
            if not 1 <= n_trials < len(lengths):
                raise ValueError(
                    f"split 'trials' holds out whole trials: validation_fraction {fraction} of {len(lengths)} "
                    f"trial(s) is {n_trials}, need 1 to {len(lengths) - 1} (pass lengths, or validation_fraction=0)"
                )
            return sum(lengths[-n_trials:])
        n_val = int(round(fraction * n_bins))
        if n_val and n_bins - n_val < 1:
            raise ValueError(f"{n_bins} training bins leave none after holding out {n_val} for validation")
        return n_val

    def _build_network(self, n_inputs: int, n_labels: int, init_seed: int) -> PiVAENetwork:
        # Weights and flow permutations from our own stream; the global RNG is restored afterwards.
        reconstruct = self._components()["reconstruct"]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            return PiVAENetwork(
                n_inputs,
                n_labels,
                int(self.output_dimension),
                int(self.hidden_units),
                int(self.gen_nodes),
                int(self.n_blk),
                int(self.prior_hidden),
                reconstruct,
            )

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, *, lengths=None) -> PiVAE:
        """Train on ``(T, N)`` binned counts with ``(T, C)`` continuous labels.

        Args:
            X: training inputs (smoothed spike counts per bin), trials concatenated.
            y: labels per bin (required), e.g. ``(10 vx, 10 vy, direction)``.
            lengths: bins per trial: the validation split of ``split="trials"`` and, with
                ``windows="within_trials"``, the edges context windows stop at (None: one sequence).

        Returns:
            ``self``.

        Raises:
            ValueError: bad inputs or parameters, or too few bins or trials for the validation split.
        """
        self._check_params()
        parts = self._components()
        X, y = check_inputs(X, y, need_y=True, estimator=self)
        seg = _segments(lengths, X.shape[0])
        n_val = self._n_validation(seg, str(parts["split"]))
        train_seg, val_seg = _split_validation(seg, n_val)
        train_seg = _window_segments(str(parts["windows"]), train_seg)
        val_seg = _window_segments(str(parts["windows"]), val_seg)
        n_train = sum(train_seg)

        init_seed, order_seed, noise_seed = seed_streams(self.seed, 3)
        device = torch.device(self.device)
        network = self._build_network(X.shape[1], y.shape[1], init_seed)
        if parts["standardize_labels"]:
            scale = y[:n_train].std(0)
            network.prior.label_mean.copy_(torch.from_numpy(y[:n_train].mean(0)))
            network.prior.label_scale.copy_(torch.from_numpy(np.where(scale > 1e-8, scale, 1.0)))
        network.to(device).train()

        x_all = torch.from_numpy(X).to(device)
        u_all = torch.from_numpy(y.astype(np.float32)).to(device)
        x_train, u_train = x_all[:n_train], u_all[:n_train]
        x_val, u_val = x_all[n_train:], u_all[n_train:]
        inside_train = _inside_trial(train_seg, device)
        inside_val = _inside_trial(val_seg, device) if n_val else None
        starts = torch.arange(0, n_train, int(self.batch_size))
        order_gen = torch.Generator().manual_seed(order_seed)
        noise_gen = torch.Generator().manual_seed(noise_seed)  # on the CPU: the same draws on any device
        optimizer = torch.optim.Adam(network.parameters(), lr=float(self.learning_rate))

        losses, val_losses = [], []
        best_state, best_epoch, best_val = None, int(self.epochs), float("inf")
        start_time = time.perf_counter()
        for epoch in tqdm(range(1, int(self.epochs) + 1), desc="piVAE", file=sys.stderr, disable=not self.verbose):
            for start in starts[torch.randperm(len(starts), generator=order_gen)].tolist():
                idx = torch.arange(start, min(start + int(self.batch_size), n_train), device=device)
                context = _context(x_train, idx, train_seg, inside_train)
                noise = torch.randn(len(idx), int(self.output_dimension), generator=noise_gen).to(device)
                loss = network.loss(context, u_train[idx], noise, inside_train[idx]).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
            if n_val:
                val = _mean_loss(network, x_val, u_val, val_seg, inside_val)
                val_losses.append(val)
                if val < best_val:
                    best_val, best_epoch = val, epoch
                    best_state = copy.deepcopy(network.state_dict())
        seconds = time.perf_counter() - start_time
        if best_state is not None:
            network.load_state_dict(best_state)

        self.network_ = network.eval()
        self.loss_ = torch.stack(losses).double().cpu().numpy()
        self.val_loss_ = np.asarray(val_losses, dtype=np.float64)
        self.best_epoch_ = best_epoch
        self.protocol_ = parts
        self.n_train_bins_ = n_train
        self.n_validation_bins_ = n_val
        self.training_seconds_ = seconds
        self.n_features_in_ = X.shape[1]
        self.n_labels_in_ = y.shape[1]
        return self

    @torch.no_grad()
    def transform(self, X: np.ndarray, *, y: np.ndarray | None = None, lengths=None) -> np.ndarray:
        """Posterior means of ``(T, N)`` bins given their ``(T, C)`` labels; ``(T, output_dimension)`` float32.

        Args:
            X: inputs, trials concatenated.
            y: labels per bin (required: the posterior includes the label prior).
            lengths: bins per trial, the edges windows stop at with ``windows="within_trials"``
                (None: one sequence; ``"across_trials"`` cuts them from all bins at once).
        """
        self._check_fitted("network_")
        X, y = check_inputs(X, y, need_y=True, n_features=self.n_features_in_, estimator=self)
        if y.shape[1] != self.n_labels_in_:
            raise ValueError(f"y has {y.shape[1]} label columns but the model was fitted on {self.n_labels_in_}")
        seg = _window_segments(str(self._components()["windows"]), _segments(lengths, X.shape[0]))
        device = next(self.network_.parameters()).device
        x = torch.from_numpy(X).to(device)
        u = torch.from_numpy(y.astype(np.float32)).to(device)
        inside = _inside_trial(seg, device)
        parts = [
            self.network_.posterior(_context(x, idx, seg, inside), u[idx])[0]
            for idx in torch.arange(x.shape[0], device=device).split(_CHUNK)
        ]
        return torch.cat(parts).float().cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def save(self, folder: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write ``model.pt`` (CPU state dict), ``loss.npy``, ``val_loss.npy`` and ``model.json`` (atomically).

        Args:
            folder: checkpoint folder.
            extra: additional JSON-serialisable provenance (session, area, code fingerprint, ...).
        """
        self._check_fitted("network_")
        sidecar = {
            "method": self.name,
            "params": self.get_params(),
            "fit": {
                "iterations": len(self.loss_),
                "final_loss": float(self.loss_[-1]),
                "best_epoch": int(self.best_epoch_),
                "n_train_bins": int(self.n_train_bins_),
                "n_validation_bins": int(self.n_validation_bins_),
                "training_seconds": float(self.training_seconds_),
                "n_features_in": int(self.n_features_in_),
                "n_labels_in": int(self.n_labels_in_),
                "trained_on": str(next(self.network_.parameters()).device),
            },
            "extra": extra or {},
        }
        return write_checkpoint(
            folder,
            sidecar,
            {
                "model.pt": state_dict_writer(self.network_),
                "loss.npy": array_writer(self.loss_),
                "val_loss.npy": array_writer(self.val_loss_),
            },
        )

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str = "cpu") -> PiVAE:
        """Rebuild a fitted model from a checkpoint folder.

        Raises:
            InputError: the checkpoint is missing, corrupted (checksum), of another method, or its
                weights do not fit the recorded architecture.
        """
        folder = Path(folder)
        meta = read_checkpoint(folder, cls.name)
        model = cls(**dict(meta["params"], device=device))
        fit = meta["fit"]
        network = load_weights(
            folder / "model.pt",
            lambda: model._build_network(
                int(fit["n_features_in"]), int(fit["n_labels_in"]), seed_streams(model.seed, 3)[0]
            ),
            "network",
        )
        model.network_ = network.to(torch.device(device)).eval()
        model.n_features_in_ = int(fit["n_features_in"])
        model.n_labels_in_ = int(fit["n_labels_in"])
        model.best_epoch_ = int(fit["best_epoch"])
        model.protocol_ = model._components()
        model.n_train_bins_ = int(fit.get("n_train_bins", -1))  # -1: a checkpoint older than these fields
        model.n_validation_bins_ = int(fit.get("n_validation_bins", -1))
        model.training_seconds_ = float(fit["training_seconds"])
        model.loss_ = load_array(folder / "loss.npy")
        model.val_loss_ = load_array(folder / "val_loss.npy")
        return model

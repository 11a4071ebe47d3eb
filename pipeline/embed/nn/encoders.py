"""Encoders that map neural activity to points on the unit sphere.

Two architectures, named as in CEBRA so a config can refer to them by string:

* ``"offset1"`` (:class:`Offset1Encoder`) -- the single-bin MLP that NER and the paper's CEBRA
  baseline use (NER_METHOD.md section 3)::

      x in R^N -> Linear(N, H) -> GELU -> Linear(H, H) -> GELU -> Linear(H, H // 2) -> GELU
        -> Linear(H // 2, n_output) -> x / ||x||_2

  with ``H = n_hidden = 32`` by default. Receptive field: the bin itself, ``(0, 1)``.

* ``"offset10"`` (:class:`Offset10Encoder`) -- an optional convolutional encoder in the style of
  CEBRA's ``offset10-model``: ``Conv1d(N, H, 2) -> GELU -> 3 x [Conv1d(H, H, 3) -> GELU, plus a
  skip connection that crops one bin at each end] -> Conv1d(H, n_output, 3) -> x / ||x||_2``.
  Each kernel of width ``k`` shortens the time axis by ``k - 1``: ``1 + 3 * 2 + 2 = 9``, so a
  window of exactly 10 bins gives one output. Receptive field ``(5, 5)``: the embedding of bin
  ``t`` sees bins ``t - 5 ... t + 4``.

Every encoder exposes

* ``receptive_field`` -- ``(left, right)`` bins of context, CEBRA's ``Offset`` convention: the
  window for bin ``t`` is ``x[t - left : t + right]`` (``left + right`` bins);
* ``n_inputs`` / ``n_output`` attributes and a class-level ``name`` (its registry key);
* ``config()`` -- the constructor arguments as a JSON-serialisable dict, so that
  ``build_encoder(model.name, **model.config())`` rebuilds the same architecture (a JSON sidecar
  stores ``{"encoder": model.name, "encoder_config": model.config()}`` next to the state dict);
* ``forward(x)`` on one window per sample and ``forward_sequence(x)`` on a longer sequence.

Use :func:`windows` to cut the ``(T, N)`` activity of a session into per-bin windows (replicate
padding at session or trial edges) for training batches or batched inference, and
:func:`build_encoder` / :data:`ENCODERS` to build an encoder by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = [
    "ENCODERS",
    "Encoder",
    "L2Normalize",
    "Offset1Encoder",
    "Offset10Encoder",
    "build_encoder",
    "windows",
]


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class L2Normalize(nn.Module):
    """Project vectors onto the unit sphere along one dimension.

    Computes ``x / max(||x||_2, eps)``: identical to dividing by the norm (what CEBRA's ``_Norm``
    and the NER paper do) whenever the norm exceeds ``eps``; the floor only avoids NaN for an
    all-zero vector. Has no parameters, so it does not appear in a state dict.

    Args:
        dim: dimension holding the vector components. Default: 1 (features of a ``(batch, d)``
            or ``(batch, d, time)`` tensor).
        eps: smallest norm divided by. Default: 1e-12.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-12):
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Divide ``x`` by its L2 norm along ``self.dim``."""
        return x / x.norm(dim=self.dim, keepdim=True).clamp_min(self.eps)

    def extra_repr(self) -> str:
        """Show the arguments when the module is printed."""
        return f"dim={self.dim}"


class Encoder(nn.Module):
    """Common interface of the encoders (not used directly).

    Subclasses set ``name`` and implement ``receptive_field``, ``forward`` and
    ``forward_sequence``.

    Args:
        n_inputs: number of input features N (neurons).
        n_hidden: hidden width H.
        n_output: embedding dimension.
        normalize: end with :class:`L2Normalize` (unit-sphere embeddings).
    """

    name: ClassVar[str] = ""

    def __init__(self, n_inputs: int, n_hidden: int, n_output: int, normalize: bool):
        super().__init__()
        self.n_inputs = _check_positive_int(n_inputs, "n_inputs")
        self.n_hidden = _check_positive_int(n_hidden, "n_hidden")
        self.n_output = _check_positive_int(n_output, "n_output")
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be a bool, got {normalize!r}")
        self.normalize = normalize

    @property
    def receptive_field(self) -> tuple[int, int]:
        """``(left, right)`` bins of context; the window of bin t is ``x[t - left : t + right]``."""
        raise NotImplementedError

    @property
    def window_length(self) -> int:
        """Number of time bins one embedding sees (``left + right``)."""
        left, right = self.receptive_field
        return left + right

    def config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict.

        Returns:
            ``{"n_inputs", "n_hidden", "n_output", "normalize"}``; ``type(self)(**config())`` (or
            ``build_encoder(self.name, **config())``) builds the same architecture, so a saved
            state dict loads into it.
        """
        return {
            "n_inputs": self.n_inputs,
            "n_hidden": self.n_hidden,
            "n_output": self.n_output,
            "normalize": self.normalize,
        }

    def _check_input(self, x: Tensor, ndims: tuple[int, ...], expected: str) -> None:
        """Raise ValueError unless ``x`` has one of ``ndims`` dimensions and N features in dim 1."""
        if not isinstance(x, Tensor):
            raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() not in ndims or x.shape[1] != self.n_inputs:
            raise ValueError(f"x must have shape {expected} with N={self.n_inputs}, got {tuple(x.shape)}")

    def extra_repr(self) -> str:
        """Show the receptive field when the module is printed."""
        return f"name={self.name!r}, receptive_field={self.receptive_field}"


class Offset1Encoder(Encoder):
    """NER's single-bin MLP encoder (CEBRA ``offset1-model``).

    ``Linear(N, H) -> GELU -> Linear(H, H) -> GELU -> Linear(H, H // 2) -> GELU ->
    Linear(H // 2, n_output)``, then division by the L2 norm. With the defaults this is the paper's
    N -> 32 -> 32 -> 16 -> 3 network. Number of parameters:
    ``N*H + H + H*H + H + H*(H//2) + H//2 + (H//2)*n_output + n_output``.

    Args:
        n_inputs: number of neurons N.
        n_hidden: hidden width H (>= 2). Default: 32.
        n_output: embedding dimension. Default: 3.
        normalize: divide the output by its L2 norm (unit sphere). Default: True.

    Example:
        >>> enc = Offset1Encoder(44)
        >>> enc(torch.randn(8, 44)).shape
        torch.Size([8, 3])
    """

    name: ClassVar[str] = "offset1"

    def __init__(self, n_inputs: int, n_hidden: int = 32, n_output: int = 3, normalize: bool = True):
        super().__init__(n_inputs, n_hidden, n_output, normalize)
        _check_positive_int(n_hidden, "n_hidden", minimum=2)
        half = n_hidden // 2
        layers: list[nn.Module] = [
            nn.Linear(n_inputs, n_hidden),
            nn.GELU(),
            nn.Linear(n_hidden, n_hidden),
            nn.GELU(),
            nn.Linear(n_hidden, half),
            nn.GELU(),
            nn.Linear(half, n_output),
        ]
        if normalize:
            layers.append(L2Normalize(dim=1))
        self.net = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> tuple[int, int]:
        """``(0, 1)``: the embedding of bin t sees bin t only."""
        return (0, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Embed single bins.

        Args:
            x: ``(batch, N)``, or ``(batch, N, 1)`` as produced by :func:`windows`.

        Returns:
            ``(batch, n_output)``; unit rows when ``normalize``.
        """
        self._check_input(x, (2, 3), "(batch, N) or (batch, N, 1)")
        if x.dim() == 3:
            if x.shape[2] != 1:
                raise ValueError(f"x must have one time bin for offset1, got shape {tuple(x.shape)}")
            x = x[:, :, 0]
        return self.net(x)

    def forward_sequence(self, x: Tensor) -> Tensor:
        """Embed every bin of a sequence.

        Args:
            x: ``(batch, N, time)``.

        Returns:
            ``(batch, n_output, time)``: output ``k`` is the embedding of input bin ``k``.
        """
        self._check_input(x, (3,), "(batch, N, time)")
        batch, _, steps = x.shape
        flat = x.transpose(1, 2).reshape(batch * steps, self.n_inputs)
        return self.net(flat).reshape(batch, steps, self.n_output).transpose(1, 2)


class _Residual(nn.Module):
    """``crop(x) + GELU(Conv1d(H, H, 3)(x))``: a width-3 residual block that shortens time by 2."""

    def __init__(self, n_hidden: int):
        super().__init__()
        self.conv = nn.Conv1d(n_hidden, n_hidden, kernel_size=3)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to ``(batch, H, time)``; returns ``(batch, H, time - 2)``."""
        return x[:, :, 1:-1] + self.act(self.conv(x))


class Offset10Encoder(Encoder):
    """Convolutional encoder with a 10-bin receptive field (CEBRA ``offset10-model`` style).

    ``Conv1d(N, H, 2) -> GELU -> 3 x residual[Conv1d(H, H, 3) -> GELU] -> Conv1d(H, n_output, 3)``,
    then division by the L2 norm. The time axis shrinks by ``1 + 3*2 + 2 = 9`` bins, so a 10-bin
    window yields one embedding; :attr:`receptive_field` is ``(5, 5)`` (bin t sees t-5 ... t+4).
    Number of parameters: ``2*N*H + H + 3*(3*H*H + H) + 3*H*n_output + n_output``.

    NER itself uses :class:`Offset1Encoder`; this one is offered as an option (and for a CEBRA
    baseline with temporal context).

    Args:
        n_inputs: number of neurons N.
        n_hidden: number of channels H. Default: 32.
        n_output: embedding dimension. Default: 3.
        normalize: divide the output by its L2 norm (unit sphere). Default: True.

    Example:
        >>> enc = Offset10Encoder(44)
        >>> enc(torch.randn(8, 44, 10)).shape
        torch.Size([8, 3])
    """

    name: ClassVar[str] = "offset10"
    _N_RESIDUAL: ClassVar[int] = 3

    def __init__(self, n_inputs: int, n_hidden: int = 32, n_output: int = 3, normalize: bool = True):
        super().__init__(n_inputs, n_hidden, n_output, normalize)
        layers: list[nn.Module] = [nn.Conv1d(n_inputs, n_hidden, kernel_size=2), nn.GELU()]
        layers += [_Residual(n_hidden) for _ in range(self._N_RESIDUAL)]
        layers.append(nn.Conv1d(n_hidden, n_output, kernel_size=3))
        if normalize:
            layers.append(L2Normalize(dim=1))
        self.net = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> tuple[int, int]:
        """``(5, 5)``: the embedding of bin t sees bins t-5 ... t+4 (10 bins)."""
        return (5, 5)

    def forward(self, x: Tensor) -> Tensor:
        """Embed one 10-bin window per sample.

        Args:
            x: ``(batch, N, 10)``, e.g. from :func:`windows` with ``receptive_field=(5, 5)``.

        Returns:
            ``(batch, n_output)``; unit rows when ``normalize``.
        """
        self._check_input(x, (3,), f"(batch, N, {self.window_length})")
        if x.shape[2] != self.window_length:
            raise ValueError(f"x must have {self.window_length} time bins for offset10, got shape {tuple(x.shape)}")
        return self.net(x)[:, :, 0]

    def forward_sequence(self, x: Tensor) -> Tensor:
        """Embed all complete 10-bin windows of a sequence in one convolution pass.

        Args:
            x: ``(batch, N, time)`` with ``time >= 10``.

        Returns:
            ``(batch, n_output, time - 9)``: output ``k`` depends on input bins ``k ... k + 9`` only.
            To embed every bin of a ``(T, N)`` session, pad it with 5 bins before and 4 after
            (replicate), e.g. ``forward_sequence(F.pad(x.T[None], (5, 4), mode="replicate"))``.
        """
        self._check_input(x, (3,), "(batch, N, time)")
        if x.shape[2] < self.window_length:
            raise ValueError(f"x must have at least {self.window_length} time bins, got shape {tuple(x.shape)}")
        return self.net(x)


#: Registry of encoder classes by config name.
ENCODERS: dict[str, type[Encoder]] = {
    "offset1": Offset1Encoder,
    "offset10": Offset10Encoder,
}


def build_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build a registered encoder by name.

    Args:
        name: a key of :data:`ENCODERS` (``"offset1"`` or ``"offset10"``).
        **kwargs: constructor arguments (``n_inputs`` required; see the classes), e.g. the dict
            returned by :meth:`Encoder.config`.

    Returns:
        A freshly initialised encoder.

    Raises:
        ValueError: ``name`` is not registered (the message lists the known names), or an
            argument is invalid.
    """
    try:
        cls = ENCODERS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(ENCODERS))
        raise ValueError(f"unknown encoder {name!r}; known encoders: {known}") from None
    return cls(**kwargs)


def windows(
    x: Tensor,
    receptive_field: tuple[int, int] | Sequence[int],
    *,
    index: Tensor | Sequence[int] | None = None,
    lengths: Sequence[int] | None = None,
) -> Tensor:
    """Cut per-bin context windows out of a ``(T, N)`` activity matrix.

    The window of bin ``t`` for ``receptive_field = (left, right)`` is
    ``x[t - left : t + right]`` (``L = left + right`` bins), transposed to ``(N, L)`` for
    ``Conv1d``. Bins beyond an edge are filled by repeating the edge bin (replicate padding, as
    CEBRA pads before transform). Without ``lengths`` the edges are those of the whole session;
    with ``lengths`` (bins per trial, trials concatenated) windows never cross a trial boundary and
    are padded at each trial's edges instead.

    This gathers ``len(index) * N * L`` values: for batched inference over a long session pass
    successive chunks of ``index`` (e.g. ``torch.arange(T).split(4096)``) rather than all bins; for
    training pass the sampled batch indices.

    Args:
        x: ``(T, N)`` tensor (bins x neurons), any dtype/device; the result shares both.
        receptive_field: ``(left, right)`` with ``left >= 0`` and ``right >= 1``, usually
            ``encoder.receptive_field``.
        index: bins to build windows for (1-D integer tensor or sequence, values in ``[0, T)``).
            Default: all bins ``0 ... T-1``.
        lengths: optional positive segment lengths summing to ``T``.

    Returns:
        ``(len(index), N, L)`` tensor. For ``(0, 1)`` this is ``x[index][:, :, None]``.

    Raises:
        ValueError: bad shapes, receptive field, indices or lengths.

    Example:
        >>> x = torch.arange(6.).reshape(3, 2)      # T=3 bins, N=2
        >>> windows(x, (1, 2))[0]                  # bin 0 sees bins -1 (padded), 0, 1
        tensor([[0., 0., 2.],
                [1., 1., 3.]])
    """
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a 2-D torch.Tensor (T, N), got {getattr(x, 'shape', type(x))}")
    n_bins = x.shape[0]
    if n_bins < 1:
        raise ValueError("x must have at least one bin")
    try:
        left, right = (int(v) for v in receptive_field)
    except (TypeError, ValueError):
        raise ValueError(f"receptive_field must be a pair (left, right), got {receptive_field!r}") from None
    if left < 0 or right < 1:
        raise ValueError(f"receptive_field must have left >= 0 and right >= 1, got {(left, right)}")
    device = x.device

    if index is None:
        idx = torch.arange(n_bins, device=device)
    else:
        idx = torch.as_tensor(index, device=device)
        if idx.dim() != 1 or idx.is_floating_point() or idx.dtype == torch.bool:
            raise ValueError("index must be a 1-D integer tensor or sequence")
        idx = idx.long()
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n_bins):
            raise ValueError(f"index values must lie in [0, {n_bins})")

    if lengths is None:
        lo = torch.zeros_like(idx)
        hi = torch.full_like(idx, n_bins - 1)
    else:
        seg = torch.as_tensor(list(lengths), dtype=torch.long)
        if seg.dim() != 1 or seg.numel() == 0 or bool((seg < 1).any()) or int(seg.sum()) != n_bins:
            raise ValueError(f"lengths must be positive integers summing to T={n_bins}")
        ends = torch.cumsum(seg, 0).to(device)
        which = torch.searchsorted(ends, idx, right=True)
        hi = ends[which] - 1
        lo = hi - seg.to(device)[which] + 1

    offsets = torch.arange(-left, right, device=device)
    gather = idx[:, None] + offsets[None, :]
    gather = torch.maximum(torch.minimum(gather, hi[:, None]), lo[:, None])
    return x[gather].transpose(1, 2).contiguous()

"""Neural Embeddings Rank (NER) as an sklearn-style estimator.

The defaults are the paper's (NER_METHOD.md sections 2-3): the offset1 encoder
(N -> 32 -> 32 -> 16 -> 3, GELU, unit sphere), batches of 512 references plus their time-delta
positives, the rank loss with ``tau = 1`` and label distance ``|du| + |dw| + circular(dtheta)``,
Adam with lr 1e-4 for 20 000 iterations.

Unlike the authors' code (a patched ``cebra`` 0.4.0) every random choice comes from ``seed``: the
initial weights from one stream, the batch draws from another (both derived with
:class:`numpy.random.SeedSequence`, so they never overlap), without touching torch's or numpy's
global random state. The same seed on the same device and library versions gives bit-identical
embeddings on the CPU; CUDA kernels may add rounding-level differences.

Example:
    >>> model = NER(max_iterations=100, seed=1).fit(X_train, y_train)   # doctest: +SKIP
    >>> z = model.transform(X_test)                                      # (T, 3) float32
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

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
from pipeline.embed.nn.encoders import build_encoder
from pipeline.embed.nn.losses import RankLoss
from pipeline.embed.nn.sampling import TimeDeltaSampler
from pipeline.embed.nn.solver import embed, train_rank

__all__ = ["NER"]


class NER(EmbeddingMethod):
    """NER embedding: rank-contrastive training of a small encoder on movement labels.

    Args:
        encoder: ``"offset1"`` (the paper's single-bin MLP) or ``"offset10"`` (conv, 10-bin context).
        hidden_units: hidden width of the encoder (32).
        output_dimension: embedding dimension (3).
        batch_size: references per iteration ``B`` (512; the loss sees ``2B`` embeddings).
        learning_rate: Adam learning rate (1e-4).
        temperature: ``tau`` of the similarity ``-||zi - zj|| / tau`` (1).
        max_iterations: training iterations (20 000).
        angle_column: label column holding the direction in degrees (circular distance), or None.
        search_columns: label columns of the positive search (velocity only: ``(0, 1)``).
        time_offset: lag of the empirical label change of the time-delta sampler (1 bin).
        precision: working precision of the rank loss after the label structure: ``"float32"``
            (default; the same held-out scores as ``"float64"`` on the real sessions, about 1.6x
            faster on a CPU, see the README) or ``"float64"`` (the reference path).
        seed: the one seed of every random choice.
        device: torch device to train and embed on (``"cpu"``, ``"cuda:0"``, ...).
        verbose: show a tqdm progress bar on stderr.

    Attributes (after ``fit``):
        encoder_: the trained encoder (eval mode).
        loss_: ``(max_iterations,)`` loss of every iteration.
        training_seconds_: wall time of the training loop.
        n_features_in_: number of input features (neurons).
    """

    name: ClassVar[str] = "ner"
    uses_labels_at_transform: ClassVar[bool] = False
    trainable_on_gpu: ClassVar[bool] = True

    def __init__(
        self,
        *,
        encoder: str = "offset1",
        hidden_units: int = 32,
        output_dimension: int = 3,
        batch_size: int = 512,
        learning_rate: float = 1e-4,
        temperature: float = 1.0,
        max_iterations: int = 20000,
        angle_column: int | None = 2,
        search_columns: tuple[int, ...] = (0, 1),
        time_offset: int = 1,
        precision: str = "float32",
        seed: int = 0,
        device: str = "cpu",
        verbose: bool = False,
    ):
        self.encoder = encoder
        self.hidden_units = hidden_units
        self.output_dimension = output_dimension
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.temperature = temperature
        self.max_iterations = max_iterations
        self.angle_column = angle_column
        self.search_columns = search_columns
        self.time_offset = time_offset
        self.precision = precision
        self.seed = seed
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit / transform
    def _build_encoder(self, n_inputs: int, init_seed: int | None):
        kwargs = {"n_inputs": n_inputs, "n_hidden": self.hidden_units, "n_output": self.output_dimension}
        if init_seed is None:
            return build_encoder(self.encoder, **kwargs)
        # Initialise on the CPU from our own stream; the global RNG is restored afterwards.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            return build_encoder(self.encoder, **kwargs)

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, *, lengths=None) -> NER:
        """Train on ``(T, N)`` bins with ``(T, C)`` labels (``(10 vx, 10 vy, angle)`` for NER).

        Args:
            X: training inputs, trials concatenated.
            y: labels per bin (required).
            lengths: bins per trial (needed only by encoders with context, to keep windows inside
                trials).

        Returns:
            ``self``.
        """
        X, y = check_inputs(X, y, need_y=True, estimator=self)
        if y.shape[0] < 2:
            raise ValueError(f"NER needs at least 2 training bins, got n_samples = {y.shape[0]}")
        init_seed, sample_seed = seed_streams(self.seed, 2)
        device = torch.device(self.device)
        encoder = self._build_encoder(X.shape[1], init_seed).to(device)
        sampler = TimeDeltaSampler(
            y,
            generator=torch.Generator().manual_seed(sample_seed),
            position_columns=tuple(self.search_columns),
            time_offset=self.time_offset,
        )
        x_dev = torch.from_numpy(X).to(device)
        y_dev = torch.from_numpy(y).to(device)  # float64: exact label distances and ties
        history = train_rank(
            encoder,
            x_dev,
            y_dev,
            sampler,
            iterations=int(self.max_iterations),
            batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate),
            loss_fn=RankLoss(
                temperature=float(self.temperature), angle_column=self.angle_column, precision=self.precision
            ),
            lengths=lengths,
            progress=bool(self.verbose),
        )
        encoder.eval()
        self.encoder_ = encoder
        self.loss_ = history.loss
        self.training_seconds_ = history.seconds
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray, *, y: np.ndarray | None = None, lengths=None) -> np.ndarray:
        """Embed ``(T, N)`` bins (labels are not used); returns ``(T, output_dimension)`` float32."""
        self._check_fitted("encoder_")
        X, _ = check_inputs(X, n_features=self.n_features_in_, estimator=self)
        device = next(self.encoder_.parameters()).device
        z = embed(self.encoder_, torch.from_numpy(X).to(device), lengths=lengths)
        return z.float().cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def save(self, folder: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write ``model.pt`` (CPU state dict), ``loss.npy`` and ``model.json`` into ``folder`` (atomically).

        Args:
            folder: checkpoint folder.
            extra: additional JSON-serialisable provenance (session, area, code fingerprint, ...).
        """
        self._check_fitted("encoder_")
        sidecar = {
            "method": self.name,
            "params": self.get_params(),
            "encoder": {
                "name": self.encoder_.name,
                "config": self.encoder_.config(),
                "receptive_field": list(self.encoder_.receptive_field),
            },
            "fit": {
                "iterations": len(self.loss_),
                "final_loss": float(self.loss_[-1]),
                "training_seconds": float(self.training_seconds_),
                "n_features_in": self.n_features_in_,
                "trained_on": str(next(self.encoder_.parameters()).device),
            },
            "extra": extra or {},
        }
        return write_checkpoint(
            folder,
            sidecar,
            {
                "model.pt": state_dict_writer(self.encoder_),
                "loss.npy": array_writer(self.loss_),
            },
        )

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str = "cpu") -> NER:
        """Rebuild a fitted model from a checkpoint folder.

        Raises:
            InputError: the checkpoint is missing, corrupted (checksum), of another method, or its
                weights do not fit the recorded architecture.
        """
        folder = Path(folder)
        meta = read_checkpoint(folder, cls.name)
        params = dict(meta["params"], device=device)
        params["search_columns"] = tuple(params["search_columns"])
        model = cls(**params)
        encoder = load_weights(
            folder / "model.pt", lambda: build_encoder(meta["encoder"]["name"], **meta["encoder"]["config"]), "encoder"
        )
        model.encoder_ = encoder.to(torch.device(device)).eval()
        model.n_features_in_ = int(meta["fit"]["n_features_in"])
        model.training_seconds_ = float(meta["fit"]["training_seconds"])
        model.loss_ = load_array(folder / "loss.npy")
        return model

"""CEBRA (Schneider, Lee & Mathis 2023) through the real ``cebra`` package, as the NER paper ran it.

The defaults are the NER authors' CEBRA baseline (NER_METHOD.md section 8.1): ``offset1-model``
(N -> 32 -> 32 -> 16 -> d, GELU, unit sphere), batches of 512, Adam with lr 1e-4, InfoNCE with
cosine similarity and a constant temperature 1, ``time_delta`` positives with a time offset of one
bin, 20 000 iterations, all label columns ``(10 vx, 10 vy, direction)`` as one continuous index
(stock CEBRA searches every column, the direction in degrees included). :class:`CEBRA16D` is the
16-dimensional variant the paper decoded with kNN.

Trials are concatenated as the authors did: the sampler's empirical label changes include the
steps across trial boundaries, and ``lengths`` is not needed (the model sees one bin at a time).

Seeding (see :data:`SEEDING`): the public ``cebra.CEBRA`` API takes no seed, and cebra 0.6.1's
samplers ignore the ``seed`` argument they have; each seeds its ``torch.Generator`` from
``std::random_device`` when it is built. :meth:`CEBRA.fit` therefore builds the training state
with cebra's own ``CEBRA._prepare_fit`` (private in cebra 0.6.1) and reseeds those generators
before training, while torch's and numpy's global generators are seeded inside an isolated scope
(restored afterwards) for the weight initialisation and any global draw. On the CPU the same seed
then gives bit-identical embeddings; CUDA kernels may add rounding-level differences.

Example:
    >>> model = CEBRA(max_iterations=100, seed=1).fit(X_train, y_train)   # doctest: +SKIP
    >>> z = model.transform(X_test)                                        # (T, 3) float32
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import cebra as cebra_lib
import numpy as np
import torch
from cebra.distributions.base import HasGenerator

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

__all__ = ["CEBRA", "CEBRA16D", "SEEDING"]

#: What :meth:`CEBRA.fit` can and cannot make reproducible with cebra 0.6.1 (also written to every
#: checkpoint's ``seeding`` field, with the seeds used).
SEEDING: dict[str, str] = {
    "weights": "seeded: torch.manual_seed inside torch.random.fork_rng (global RNG restored afterwards)",
    "sampler": (
        "seeded by us: cebra's samplers (distribution and its prior) ignore their seed argument "
        "and seed a torch.Generator from std::random_device; fit() reaches them through "
        "cebra.CEBRA._prepare_fit (private API of cebra 0.6.1) and calls manual_seed on them"
    ),
    "numpy": "seeded: numpy's global RNG (used only by cebra's discrete/multi-session samplers), restored afterwards",
    "not_seedable": (
        "the public cebra.CEBRA API has no seed; nondeterministic CUDA kernels (atomic adds in "
        "backward passes) can still change results at rounding level on a GPU"
    ),
}


@contextlib.contextmanager
def _isolated_global_rngs(torch_seed: int, numpy_seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's (CPU and ``device``) and numpy's global generators; restore both on exit."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(torch_seed)
            np.random.seed(numpy_seed & 0xFFFFFFFF)
            yield
    finally:
        np.random.set_state(numpy_state)


def _sampler_generators(loader: Any) -> dict[str, torch.Generator]:
    """The ``torch.Generator`` of a cebra loader's distribution and of the distributions it holds."""
    distribution = loader.distribution
    found = {"distribution": distribution.generator} if isinstance(distribution, HasGenerator) else {}
    for attr, value in sorted(vars(distribution).items()):
        if isinstance(value, HasGenerator):
            found[f"distribution.{attr}"] = value.generator
    return found


class CEBRA(EmbeddingMethod):
    """CEBRA embedding trained with ``cebra.CEBRA`` on continuous labels.

    Args:
        model_architecture: a cebra architecture name without context (``"offset1-model"``).
        num_hidden_units: hidden width (32).
        output_dimension: embedding dimension (3).
        batch_size: references per iteration (512).
        learning_rate: Adam learning rate (1e-4).
        temperature: InfoNCE temperature, constant (1).
        max_iterations: training iterations (20 000).
        distance: InfoNCE similarity, ``"cosine"`` or ``"euclidean"``.
        conditional: positive sampling, ``"time_delta"`` (the paper), ``"delta"``, ``"time"``.
        time_offsets: lag of the empirical label change (1 bin).
        seed: seed of the weights and the sampler (see :data:`SEEDING`).
        device: torch device (``"cpu"``, ``"cuda:0"``, ...).
        verbose: cebra's progress bar.

    Attributes (after ``fit``):
        model_: the trained ``cebra.models.Model`` (eval mode).
        estimator_: the fitted ``cebra.CEBRA`` (only after ``fit``; ``load`` restores ``model_``).
        loss_: ``(max_iterations,)`` loss of every iteration (cebra's ``state_dict_["loss"]``).
        training_seconds_: wall time of cebra's training loop.
        n_features_in_: number of input features (neurons).
        seeding_: the seeds used and what they cover (also in the checkpoint).
    """

    name: ClassVar[str] = "cebra"
    uses_labels_at_transform: ClassVar[bool] = False
    trainable_on_gpu: ClassVar[bool] = True

    def __init__(
        self,
        *,
        model_architecture: str = "offset1-model",
        num_hidden_units: int = 32,
        output_dimension: int = 3,
        batch_size: int = 512,
        learning_rate: float = 1e-4,
        temperature: float = 1.0,
        max_iterations: int = 20000,
        distance: str = "cosine",
        conditional: str = "time_delta",
        time_offsets: int = 1,
        seed: int = 0,
        device: str = "cpu",
        verbose: bool = False,
    ):
        self.model_architecture = model_architecture
        self.num_hidden_units = num_hidden_units
        self.output_dimension = output_dimension
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.temperature = temperature
        self.max_iterations = max_iterations
        self.distance = distance
        self.conditional = conditional
        self.time_offsets = time_offsets
        self.seed = seed
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit / transform
    def _estimator(self) -> cebra_lib.CEBRA:
        return cebra_lib.CEBRA(
            model_architecture=self.model_architecture,
            num_hidden_units=int(self.num_hidden_units),
            output_dimension=int(self.output_dimension),
            batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate),
            temperature=float(self.temperature),
            temperature_mode="constant",
            max_iterations=int(self.max_iterations),
            distance=self.distance,
            conditional=self.conditional,
            time_offsets=int(self.time_offsets),
            device=str(self.device),
            verbose=bool(self.verbose),
        )

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, *, lengths=None) -> CEBRA:
        """Train on ``(T, N)`` bins with ``(T, C)`` continuous labels (all columns are searched).

        Args:
            X: training inputs, trials concatenated.
            y: labels per bin (required).
            lengths: ignored (single-bin model; trials are concatenated as in the paper).

        Returns:
            ``self``.

        Raises:
            ValueError: bad inputs, or an architecture with a context window (those would mix
                concatenated trials at their edges and need padding; the paper used offset1-model).
        """
        X, y = check_inputs(X, y, need_y=True, estimator=self)
        if y.shape[0] <= int(self.time_offsets):
            raise ValueError(
                f"CEBRA needs more than time_offsets={self.time_offsets} training bins, got n_samples = {y.shape[0]}"
            )
        init_seed, sampler_seed, numpy_seed = seed_streams(self.seed, 3)
        estimator = self._estimator()
        with _isolated_global_rngs(init_seed, numpy_seed, torch.device(self.device)):
            state = estimator._prepare_fit(X, y)  # solver, model, loader, is_multisession
            if len(estimator.offset_) != 1:
                raise ValueError(
                    f"model_architecture {self.model_architecture!r} has a context of "
                    f"{len(estimator.offset_)} bins; only single-bin architectures such as "
                    "'offset1-model' are supported"
                )
            generators = _sampler_generators(state[2])
            sampler_seeds = seed_streams(sampler_seed, len(generators))
            for generator, seed in zip(generators.values(), sampler_seeds):
                generator.manual_seed(seed)
            estimator.state_ = state  # partial_fit trains the prepared state, as cebra's fit() does
            start = time.perf_counter()
            estimator.partial_fit(X, y)
            seconds = time.perf_counter() - start
            del estimator.state_
        self.estimator_ = estimator
        self.model_ = estimator.model_.eval()
        self.loss_ = estimator.state_dict_["loss"].detach().cpu().numpy().astype(np.float64)
        self.training_seconds_ = seconds
        self.n_features_in_ = X.shape[1]
        self.seeding_ = {
            **SEEDING,
            "cebra_version": cebra_lib.__version__,
            "init_seed": init_seed,
            "numpy_seed": numpy_seed & 0xFFFFFFFF,
            "sampler_seeds": dict(zip(generators, sampler_seeds)),
        }
        return self

    def transform(self, X: np.ndarray, *, y: np.ndarray | None = None, lengths=None) -> np.ndarray:
        """Embed ``(T, N)`` bins (labels are not used); returns ``(T, output_dimension)`` float32.

        This is what ``cebra.CEBRA.transform`` computes for a model without context (the model's
        forward pass in eval mode), done on the model directly so a loaded checkpoint embeds
        identically.
        """
        self._check_fitted("model_")
        X, _ = check_inputs(X, n_features=self.n_features_in_, estimator=self)
        device = next(self.model_.parameters()).device
        with torch.no_grad():
            z = self.model_.eval()(torch.from_numpy(X).to(device))
        return z.float().cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def save(self, folder: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write ``model.pt`` (CPU state dict of the cebra model), ``loss.npy`` and ``model.json``.

        Args:
            folder: checkpoint folder.
            extra: additional JSON-serialisable provenance (session, area, code fingerprint, ...).
        """
        self._check_fitted("model_")
        sidecar = {
            "method": self.name,
            "params": self.get_params(),
            "model": {
                "architecture": self.model_architecture,
                "num_neurons": self.n_features_in_,
                "num_units": int(self.num_hidden_units),
                "num_output": int(self.output_dimension),
            },
            "fit": {
                "iterations": len(self.loss_),
                "final_loss": float(self.loss_[-1]),
                "training_seconds": float(self.training_seconds_),
                "n_features_in": self.n_features_in_,
                "trained_on": str(next(self.model_.parameters()).device),
            },
            "seeding": self.seeding_,
            "extra": extra or {},
        }
        return write_checkpoint(
            folder,
            sidecar,
            {
                "model.pt": state_dict_writer(self.model_),
                "loss.npy": array_writer(self.loss_),
            },
        )

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str = "cpu") -> CEBRA:
        """Rebuild a fitted model from a checkpoint folder (``cebra.models.init`` + the state dict).

        Raises:
            InputError: the checkpoint is missing, corrupted (checksum), of another method, or its
                weights do not fit the recorded architecture.
        """
        folder = Path(folder)
        meta = read_checkpoint(folder, cls.name)
        model = cls(**dict(meta["params"], device=device))

        def build():
            spec = meta["model"]
            return cebra_lib.models.init(
                spec["architecture"],
                num_neurons=int(spec["num_neurons"]),
                num_units=int(spec["num_units"]),
                num_output=int(spec["num_output"]),
            )

        net = load_weights(folder / "model.pt", build, "cebra model")
        model.model_ = net.to(torch.device(device)).eval()
        model.n_features_in_ = int(meta["fit"]["n_features_in"])
        model.training_seconds_ = float(meta["fit"]["training_seconds"])
        model.seeding_ = meta["seeding"]
        model.loss_ = load_array(folder / "loss.npy")
        return model


class CEBRA16D(CEBRA):
    """CEBRA with a 16-dimensional embedding, the variant the paper decoded with kNN.

    Same arguments and defaults as :class:`CEBRA` except ``output_dimension=16``.
    """

    name: ClassVar[str] = "cebra16d"

    def __init__(
        self,
        *,
        model_architecture: str = "offset1-model",
        num_hidden_units: int = 32,
        output_dimension: int = 16,
        batch_size: int = 512,
        learning_rate: float = 1e-4,
        temperature: float = 1.0,
        max_iterations: int = 20000,
        distance: str = "cosine",
        conditional: str = "time_delta",
        time_offsets: int = 1,
        seed: int = 0,
        device: str = "cpu",
        verbose: bool = False,
    ):
        super().__init__(
            model_architecture=model_architecture,
            num_hidden_units=num_hidden_units,
            output_dimension=output_dimension,
            batch_size=batch_size,
            learning_rate=learning_rate,
            temperature=temperature,
            max_iterations=max_iterations,
            distance=distance,
            conditional=conditional,
            time_offsets=time_offsets,
            seed=seed,
            device=device,
            verbose=verbose,
        )

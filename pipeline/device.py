"""Which device a training job runs on: one GPU per concurrent job, CPU only when allowed.

Snakemake's ``--resources gpu=N`` only *counts* GPU jobs; it never tells a job which card to use,
so N concurrent jobs would all pick ``cuda:0``. :func:`acquire_device` closes that gap with a lease:
a non-blocking ``flock`` on one lock file per physical GPU, held for the life of the process. The
kernel drops the lock when the process exits or is killed, so a crashed job never strands a card.

When a scheduler has already narrowed ``CUDA_VISIBLE_DEVICES`` (SLURM does), the visible cards are
the job's own; the lock files are named after the physical ids in that variable, so jobs that share
a node still never take the same card. Without CUDA the job runs on the CPU only when the caller
allows it, and says so in the log.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

log = logging.getLogger(__name__)

LOCK_DIR_ENV = "NER_GPU_LOCK_DIR"


class DeviceUnavailable(RuntimeError):
    """No device could be leased under the given policy."""


@dataclass
class DeviceLease:
    """A device held by this process. Release it explicitly or let the process end.

    Attributes:
        device: the ``torch.device`` to train on.
        physical_id: the card's id outside this process (``CUDA_VISIBLE_DEVICES`` entry or ordinal);
            None on CPU.
        reason: one line for the log and the output attrs.
    """

    device: torch.device
    physical_id: str | None
    reason: str
    _fd: int | None = field(default=None, repr=False)

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def describe(self) -> dict:
        """JSON-serialisable description recorded with trained models."""
        out = {"device": str(self.device), "physical_id": self.physical_id, "reason": self.reason}
        if self.device.type == "cuda":
            out["name"] = torch.cuda.get_device_name(self.device)
        return out

    def __enter__(self) -> DeviceLease:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_dir() -> Path:
    """Node-local folder of the lock files (``$NER_GPU_LOCK_DIR`` or a per-user temp folder)."""
    folder = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / f"ner-gpu-locks-{os.getuid()}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _physical_ids(n_visible: int) -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        if len(ids) >= n_visible:
            return ids[:n_visible]
    return [str(i) for i in range(n_visible)]


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def acquire_device(prefer: str = "cuda", *, allow_cpu: bool = False, wait_s: float = 0.0,
                   poll_s: float = 0.5) -> DeviceLease:
    """Lease a device for this process.

    Args:
        prefer: ``"cuda"`` (lease a free GPU) or ``"cpu"`` (always the CPU).
        allow_cpu: fall back to the CPU when CUDA is unavailable; otherwise raise.
        wait_s: how long to wait for a GPU to become free before giving up.
        poll_s: polling interval while waiting.

    Raises:
        DeviceUnavailable: no CUDA and ``allow_cpu`` is False, or every visible GPU stayed leased
            for ``wait_s`` seconds.
    """
    if prefer == "cpu":
        return DeviceLease(torch.device("cpu"), None, "CPU requested")
    if prefer != "cuda":
        raise ValueError(f"prefer must be 'cuda' or 'cpu', got {prefer!r}")
    if not torch.cuda.is_available():
        if not allow_cpu:
            raise DeviceUnavailable("CUDA is not available and CPU fallback is not allowed "
                                    "(set device.allow_cpu: true in the config to run on the CPU)")
        lease = DeviceLease(torch.device("cpu"), None, "CUDA not available; CPU fallback allowed by config")
        log.warning("%s", lease.reason)
        return lease
    ids = _physical_ids(torch.cuda.device_count())
    folder = lock_dir()
    deadline = time.monotonic() + wait_s
    while True:
        for ordinal, physical in enumerate(ids):
            fd = _try_lock(folder / f"gpu-{physical}.lock")
            if fd is not None:
                lease = DeviceLease(torch.device("cuda", ordinal), physical,
                                    f"leased GPU {physical} (cuda:{ordinal} of {len(ids)} visible)", fd)
                log.info("%s", lease.reason)
                return lease
        if time.monotonic() >= deadline:
            raise DeviceUnavailable(f"all {len(ids)} visible GPU(s) {ids} are leased by other jobs "
                                    f"(lock files in {folder}); run with --resources gpu=<number of GPUs>")
        time.sleep(poll_s)

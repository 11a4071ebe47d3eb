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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

LOCK_DIR_ENV = "NER_GPU_LOCK_DIR"


class DeviceUnavailable(RuntimeError):
    """No device could be leased under the given policy."""


@dataclass
class SlotLease:
    """One of N interchangeable slots (GPUs), held through an ``flock`` on its lock file.

    Attributes:
        index: position of the slot in the list it was leased from (the ``cuda:<index>`` ordinal).
        slot_id: the slot's name (the physical GPU id); the lock file is ``gpu-<slot_id>.lock``.
        path: the lock file.
    """

    index: int
    slot_id: str
    path: Path
    _fd: int | None = field(default=None, repr=False)

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


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
    slot: SlotLease | None = field(default=None, repr=False)

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self.slot is not None:
            self.slot.release()

    def describe(self) -> dict:
        """JSON-serialisable description recorded with trained models."""
        out = {"device": str(self.device), "physical_id": self.physical_id, "reason": self.reason}
        if self.device.type == "cuda":
            import torch

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


def lease_slot(
    slot_ids: list[str], *, folder: Path | None = None, wait_s: float = 0.0, poll_s: float = 0.5
) -> SlotLease:
    """Lease the first free slot of ``slot_ids`` for this process (no torch involved).

    The device count is whatever the caller passes: :func:`acquire_device` passes the visible GPUs;
    tests pass any number. Concurrent processes never get the same slot; a slot held by a process
    that exits or is killed is free again at once (the kernel drops its ``flock``).

    Args:
        slot_ids: names of the slots (GPU ids), in preference order.
        folder: folder of the lock files (default :func:`lock_dir`).
        wait_s: how long to wait for a slot to become free before giving up.
        poll_s: polling interval while waiting.

    Raises:
        DeviceUnavailable: every slot stayed leased for ``wait_s`` seconds.
    """
    if not slot_ids:
        raise DeviceUnavailable("no GPU slots to lease from (empty device list)")
    folder = folder or lock_dir()
    deadline = time.monotonic() + wait_s
    while True:
        for index, slot_id in enumerate(slot_ids):
            path = folder / f"gpu-{slot_id}.lock"
            fd = _try_lock(path)
            if fd is not None:
                return SlotLease(index, slot_id, path, fd)
        if time.monotonic() >= deadline:
            raise DeviceUnavailable(
                f"all {len(slot_ids)} visible GPU(s) {slot_ids} are leased by other jobs "
                f"(lock files in {folder}); run with --resources gpu=<number of GPUs>"
            )
        time.sleep(poll_s)


def acquire_device(
    prefer: str = "cuda", *, allow_cpu: bool = False, wait_s: float = 0.0, poll_s: float = 0.5
) -> DeviceLease:
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
    import torch  # here, not at import: the workflow's CPU-only jobs never load it

    if prefer == "cpu":
        return DeviceLease(torch.device("cpu"), None, "CPU requested")
    if prefer != "cuda":
        raise ValueError(f"prefer must be 'cuda' or 'cpu', got {prefer!r}")
    if not torch.cuda.is_available():
        if not allow_cpu:
            raise DeviceUnavailable(
                "CUDA is not available and CPU fallback is not allowed "
                "(set device.allow_cpu: true in the config to run on the CPU)"
            )
        lease = DeviceLease(torch.device("cpu"), None, "CUDA not available; CPU fallback allowed by config")
        log.warning("%s", lease.reason)
        return lease
    slot = lease_slot(_physical_ids(torch.cuda.device_count()), wait_s=wait_s, poll_s=poll_s)
    lease = DeviceLease(
        torch.device("cuda", slot.index),
        slot.slot_id,
        f"leased GPU {slot.slot_id} (cuda:{slot.index}; lock {slot.path})",
        slot,
    )
    log.info("%s", lease.reason)
    return lease

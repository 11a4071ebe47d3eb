"""GPU leases: one card per concurrent job, released on exit or kill; CPU fallback only when allowed.

CUDA is faked (is_available / device_count) so the lease logic runs on CPU-only machines; the locks
are real flock()s on real files, taken by this process and by child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from pipeline.embed import device as dev


@pytest.fixture
def fake_gpus(monkeypatch, tmp_path):
    def make(n):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setenv(dev.LOCK_DIR_ENV, str(tmp_path / "locks"))
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    return make


def test_cpu_fallback_policy(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(dev.DeviceUnavailable, match="allow_cpu"):
        dev.acquire_device()
    lease = dev.acquire_device(allow_cpu=True)
    assert lease.device.type == "cpu" and "fallback" in lease.reason
    assert dev.acquire_device("cpu").describe()["device"] == "cpu"


def test_concurrent_leases_get_different_gpus(fake_gpus):
    fake_gpus(2)
    a = dev.acquire_device()
    b = dev.acquire_device()
    assert {str(a.device), str(b.device)} == {"cuda:0", "cuda:1"}
    with pytest.raises(dev.DeviceUnavailable, match="leased by other jobs"):
        dev.acquire_device(wait_s=0)
    a.release()
    with dev.acquire_device() as c:
        assert c.device == a.device
    b.release()


def test_scheduler_visible_devices_name_the_locks(fake_gpus, monkeypatch, tmp_path):
    fake_gpus(1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with dev.acquire_device() as lease:
        assert str(lease.device) == "cuda:0" and lease.physical_id == "3"
        assert (tmp_path / "locks" / "gpu-3.lock").exists()
        # another job on the same node that SLURM gave card 5 is not blocked by card 3
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
        with dev.acquire_device() as other:
            assert other.physical_id == "5"


def test_lock_is_released_when_a_job_is_killed(fake_gpus, tmp_path):
    fake_gpus(1)
    child = textwrap.dedent(f"""
        import os, sys, time, torch
        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: 1
        os.environ[{dev.LOCK_DIR_ENV!r}] = {str(tmp_path / "locks")!r}
        from pipeline.embed.device import acquire_device
        lease = acquire_device()
        print(lease.physical_id, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()}
    )
    try:
        assert proc.stdout.readline().strip() == "0"
        with pytest.raises(dev.DeviceUnavailable):
            dev.acquire_device(wait_s=0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        t0 = time.monotonic()
        with dev.acquire_device(wait_s=5, poll_s=0.05) as lease:
            assert lease.physical_id == "0" and time.monotonic() - t0 < 5
    finally:
        proc.kill()
        proc.wait()


_HOLDER = """
import sys, time
from pathlib import Path
from pipeline.embed.device import DeviceUnavailable, lease_slot
n, folder, wait = int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
try:
    slot = lease_slot([str(i) for i in range(n)], folder=folder, wait_s=wait, poll_s=0.05)
except DeviceUnavailable:
    print("none", flush=True)
    sys.exit(3)
print(slot.slot_id, flush=True)
sys.stdin.readline()  # hold the slot until the parent closes stdin (or kills us)
"""


def _holder(n, folder, wait_s=0.0):
    return subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(n), str(folder), str(wait_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


@pytest.mark.parametrize("n_devices", [2, 3])
def test_concurrent_processes_lease_distinct_slots(tmp_path, n_devices):
    """n processes started at once over n devices each get a different one; one more finds none;
    killing a holder frees its slot for a waiting process."""
    holders = [_holder(n_devices, tmp_path) for _ in range(n_devices)]
    try:
        got = [h.stdout.readline().strip() for h in holders]
        assert sorted(got) == [str(i) for i in range(n_devices)]
        extra = _holder(n_devices, tmp_path)
        assert extra.stdout.readline().strip() == "none" and extra.wait(timeout=30) == 3
        waiting = _holder(n_devices, tmp_path, wait_s=30)
        victim = holders[1]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        assert waiting.stdout.readline().strip() == got[1]  # the killed holder's slot, no other
        waiting.stdin.close()
        assert waiting.wait(timeout=30) == 0
    finally:
        for h in holders:
            h.kill()
            h.wait()


def test_lease_slot_needs_devices(tmp_path):
    with pytest.raises(dev.DeviceUnavailable, match="empty device list"):
        dev.lease_slot([], folder=tmp_path)

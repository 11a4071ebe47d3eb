"""pipeline.data.atomic: every output is whole or absent."""

from __future__ import annotations

import os

import pytest

from pipeline.data import atomic
from pipeline.data.atomic import atomic_path, atomic_paths, temp_sibling


def test_a_file_and_a_folder_appear_only_when_their_block_ends(tmp_path):
    target = tmp_path / "sub" / "table.tsv"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".table.tsv.tmp-") and tmp.suffix == ".tsv"
        tmp.write_text("a\n")
        assert not target.exists()
    assert target.read_text() == "a\n" and sorted(p.name for p in target.parent.iterdir()) == ["table.tsv"]
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "old.bin").write_text("old")
    with atomic_path(folder, folder=True) as tmp:
        assert tmp.is_dir()
        (tmp / "new.bin").write_text("new")
    assert [p.name for p in folder.iterdir()] == ["new.bin"]  # replaced whole, not merged


def test_an_error_leaves_the_previous_output_and_no_temporary(tmp_path):
    target = tmp_path / "fig.png"
    target.write_text("before")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "before" and [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_two_outputs_are_placed_together_or_not_at_all(tmp_path, monkeypatch):
    nwb, truth = tmp_path / "s.nwb", tmp_path / "s_truth.npz"
    calls = []

    def failing_second_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        return os.rename(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_second_replace)
    with pytest.raises(OSError, match="disk full"), atomic_paths(nwb, truth) as (a, b):
        a.write_text("nwb")
        b.write_text("truth")
    assert list(tmp_path.iterdir()) == []  # the NWB file already moved into place is removed again


def test_stale_temporaries_of_the_target_only_are_removed(tmp_path):
    for name in (".emb.zarr.tmp-dead0001.zarr", ".emb.zarr.tmp-dead0002", ".other.zarr.tmp-live0003"):
        (tmp_path / name).mkdir()
    fresh = temp_sibling(tmp_path / "emb.zarr")
    assert fresh.name.startswith(".emb.zarr.tmp-") and fresh.suffix == ".zarr" and not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.zarr.tmp-live0003"]

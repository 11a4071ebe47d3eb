"""Job provenance records: written by `workflow_job` into stores, folders and sidecars, read back by
`read_provenance` and the `pipeline provenance` command."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from pipeline.cli import main
from pipeline.data.origin import sha256_file
from pipeline.data.store import write_store
from pipeline.errors import InputError
from pipeline.stages.jobs import workflow_job
from pipeline.stages.provenance import read_provenance
from tests.support.paths import ROOT


class Named(list):
    """The part of Snakemake's Namedlist the job plumbing uses: a list with named entries."""

    def __init__(self, positional=(), **named):
        super().__init__([*positional, *named.values()])
        self._named = named

    def items(self):
        return self._named.items()

    def __getattr__(self, name):
        try:
            return self._named[name]
        except KeyError:
            raise AttributeError(name) from None


def _job(tmp_path, output, **params):
    return SimpleNamespace(
        rule="decode_within",
        wildcards=Named(method="ner", seed="2"),
        params=Named(decoding={"decoders": ["linear"]}, code="abc123", **params),
        threads=1,
        input=Named([str(tmp_path / "in.zarr")]),
        output=output,
        log=Named([str(tmp_path / "job.log")]),
    )


def test_tables_and_folders_get_a_sidecar_and_stores_an_attribute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output = Named(scores="t/scores.tsv", store="t/emb.zarr", model="t/model", provenance="t/seed2.provenance.json")
    with workflow_job(_job(tmp_path, output)):
        (tmp_path / "t").mkdir()
        (tmp_path / "t/scores.tsv").write_text("a\tb\n1\t2\n")
        ds = xr.Dataset(
            {"latent": (("trial", "dim"), np.zeros((2, 3), np.float32))},
            attrs={"device": json.dumps({"device": "cuda:1", "physical_id": "3"})},
        )
        write_store(ds, "t/emb.zarr")
        (tmp_path / "t/model").mkdir()
    sidecar = json.loads((tmp_path / "t/seed2.provenance.json").read_text())
    assert sidecar["rule"] == "decode_within" and sidecar["seed"] == 2 and sidecar["code_fingerprint"] == "abc123"
    assert sidecar["config"] == {"decoding": {"decoders": ["linear"]}}  # every param but the fingerprint
    assert sidecar["device"]["device"] == "cuda:1"  # the store's own device (training's lease) wins
    assert sidecar["versions"]["numpy"] == np.__version__ and sidecar["inputs"] == [str(tmp_path / "in.zarr")]
    assert sidecar["outputs"] == {
        "t/scores.tsv": sha256_file("t/scores.tsv"),
        "t/emb.zarr": "zarr store",
        "t/model": "folder",
    }
    for path in ("t/scores.tsv", "t/emb.zarr", "t/model", "t/seed2.provenance.json"):
        record = read_provenance(path)
        assert record["seed"] == 2 and record["device"]["physical_id"] == "3", path
    assert xr.open_zarr("t/emb.zarr", consolidated=False).attrs["provenance"]


def test_failed_job_records_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output = Named(scores="scores.tsv", provenance="x.provenance.json")
    with pytest.raises(RuntimeError), workflow_job(_job(tmp_path, output)):
        raise RuntimeError("boom")
    assert not (tmp_path / "x.provenance.json").exists()
    assert "job failed" in (tmp_path / "job.log").read_text()


def test_unrecorded_files_give_clear_errors(tmp_path):
    (tmp_path / "orphan.tsv").write_text("x\n")
    with pytest.raises(InputError, match="orphan.tsv.*lists this file"):
        read_provenance(tmp_path / "orphan.tsv")
    with pytest.raises(InputError, match="does not exist"):
        read_provenance(tmp_path / "missing.tsv")
    write_store(xr.Dataset({"a": ("x", np.zeros(2))}), tmp_path / "old.zarr")
    with pytest.raises(InputError, match="no provenance attribute"):
        read_provenance(tmp_path / "old.zarr")


def test_command_prints_the_record_and_follows_inputs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    upstream = Named(store="a.zarr")
    job = _job(tmp_path, upstream)
    job.rule, job.wildcards, job.input = "prepare", Named(session="S1"), Named(["rec.nwb"])
    with workflow_job(job):
        write_store(xr.Dataset({"a": ("x", np.zeros(2))}), "a.zarr")
    (tmp_path / "rec.nwb").write_bytes(b"raw")  # a source file: no record, not followed
    job = _job(tmp_path, Named(scores="s.tsv", provenance="s.provenance.json"))
    job.input = Named(["a.zarr"])
    with workflow_job(job):
        (tmp_path / "s.tsv").write_text("a\n1\n")
    assert main(["provenance", "--inputs", "s.tsv"]) == 0
    text = capsys.readouterr().out
    assert "rule      decode_within (method=ner, seed=2)" in text and "rule      prepare (session=S1)" in text
    assert "code      abc123" in text and "device    cpu" in text
    assert f"rec.nwb\n  source    no job made it (sha256 {sha256_file('rec.nwb')})" in text
    assert main(["provenance", "--json", "a.zarr"]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "prepare"
    assert main(["provenance", "nothing.tsv"]) == 2 and "does not exist" in capsys.readouterr().err
    # the installed console script and `python -m pipeline` are the same command
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "provenance", "s.tsv"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0 and proc.stdout.startswith("s.tsv\n  rule      decode_within")


def test_digest_lists_tables_and_arrays_and_names_what_changed(tmp_path, capsys):
    """`pipeline digest`: every table and stored array; attributes and timings do not count."""
    results = tmp_path / "results"
    (results / "benchmarks").mkdir(parents=True)
    (results / "benchmarks/job.tsv").write_text("s\n1.0\n")
    (results / "scores.tsv").write_text("metric\tvalue\nr2\t0.5\n")
    ds = xr.Dataset(
        {
            "latent": (("bin", "dim"), np.arange(6, dtype=np.float32).reshape(3, 2)),
            "area": ("unit", np.array(["M1", "PMd"], dtype=object)),
        },
        attrs={"code_fingerprint": "a"},
    )
    write_store(ds, results / "emb.zarr")
    assert main(["digest", str(results)]) == 0
    listing = capsys.readouterr().out
    keys = [line.split("\t")[0] for line in listing.splitlines()]
    assert keys == ["emb.zarr/area", "emb.zarr/latent", "scores.tsv"]
    (tmp_path / "before.tsv").write_text(listing)

    write_store(ds.assign_attrs(code_fingerprint="b"), results / "emb.zarr")  # other code, same numbers
    (results / "benchmarks/job.tsv").write_text("s\n2.0\n")
    assert main(["digest", str(results), "--compare", str(tmp_path / "before.tsv")]) == 0
    assert "identical: 3 tables and arrays" in capsys.readouterr().out

    changed = ds.copy(deep=True)
    changed["latent"][0, 0] = np.float32(1e-7)  # one value, one ulp-sized change
    write_store(changed, results / "emb.zarr")
    (results / "new.tsv").write_text("x\n")
    assert main(["digest", str(results), "--compare", str(tmp_path / "before.tsv")]) == 1
    assert capsys.readouterr().out.splitlines() == ["changed  emb.zarr/latent", "new      new.tsv"]
    assert main(["digest", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: not a folder" in capsys.readouterr().err
    assert main(["digest", str(results), "--compare", str(tmp_path / "absent.tsv")]) == 2
    assert "absent.tsv: no such file" in capsys.readouterr().err


def test_input_paths_reads_the_jobs_own_input_files_as_a_module_prefix_moves_them():
    from pipeline.stages.jobs import input_paths

    cells = {
        "ner/seed0": [("results/embeddings/ner/A/M1/seed0.zarr", "results/prepared/A.zarr")],
        "pca/seed0": [("results/embeddings/pca/A/M1/seed0.zarr", "results/prepared/A.zarr")],
    }
    files = [f for pairs in cells.values() for pair in pairs for f in pair]
    assert input_paths(cells, files) == cells  # run as the main workflow: unchanged
    prefixed = input_paths(cells, [f"lab/ner/{f}" for f in files])
    assert prefixed["pca/seed0"] == [
        ("lab/ner/results/embeddings/pca/A/M1/seed0.zarr", "lab/ner/results/prepared/A.zarr")
    ]
    assert input_paths([("A", "M1", "results/prepared/A.zarr")], ["x/results/prepared/A.zarr"]) == [
        ("A", "M1", "x/results/prepared/A.zarr")  # ids without a '/' stay as they are
    ]
    with pytest.raises(ValueError, match="names 0 inputs"):
        input_paths(cells, files[:2])  # a path the job does not read is an error, not a silent wrong file

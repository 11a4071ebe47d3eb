"""A lab's own workflow imports ours as a Snakemake module (the way the workflow catalog reuses workflows):
its own directory, config and sessions sheet, ``prefix:`` for our outputs, ``use rule * from ner as ner_*``,
and one rule of its own that consumes one of our tables. Run end to end on two short recordings written as
real NWB files, then its report is built. Nothing may land outside the prefix (our Snakefile must not assume
it is the working directory's), and the lab's recordings stay where its config says."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from tests.support.paths import ROOT
from tests.support.workflow import snakemake, write_tiny_recording

pytestmark = pytest.mark.slow

SESSIONS = ["Tiny-20161005", "Tiny-20161006"]

LAB_SNAKEFILE = textwrap.dedent(
    f"""
    configfile: "config/lab.yaml"


    module ner:
        snakefile:
            "{ROOT / "workflow" / "Snakefile"}"
        config:
            config["ner"]
        prefix:
            "ner"


    use rule * from ner as ner_*


    rule lab_best_method:
        input:
            "ner/results/decoding/within/ner/seed0.scores.tsv",
        output:
            "lab/best_cell.tsv",
        run:
            import pandas as pd

            scores = pd.read_csv(input[0], sep="\\t")
            held_out = scores.query("target == 'velocity' and evaluation == 'held_out'")
            best = held_out.sort_values("value").tail(1)
            best.to_csv(output[0], sep="\\t", index=False)


    rule all:
        default_target: True
        input:
            rules.ner_all.input,
            "lab/best_cell.tsv",
    """
)

# The lab's config: the module's config is this block alone, over the schema's defaults (the paper's
# settings), not over our config/config.yaml (the demo's). Small: NER only, M1, 150 iterations.
LAB_CONFIG = textwrap.dedent(
    """
    ner:
      sessions: config/sessions.tsv
      data_dir: recordings
      simulation: {enabled: false}
      device: {allow_cpu: true}
      methods:
        ner: {enabled: true, params: {max_iterations: 150, batch_size: 256}}
        cebra: {enabled: false}
        cebra16d: {enabled: false}
        pivae: {enabled: false}
        pca: {enabled: false}
        dpca: {enabled: false}
        umap: {enabled: false}
        umap_labels: {enabled: false}
      decoding: {decoders: [linear], alignments: [paper, leak_free]}
      groups:
        m1_lab: {subjects: [Tiny], areas: [M1]}
    """
)


def test_lab_workflow_imports_ours_as_a_module(tmp_path):
    lab = tmp_path / "lab_workflow"
    (lab / "config").mkdir(parents=True)
    for sid in SESSIONS:
        path = write_tiny_recording(tmp_path, sid, areas=("M1",))
        (lab / "recordings").mkdir(exist_ok=True)
        path.rename(lab / "recordings" / path.name)
    (lab / "config/sessions.tsv").write_text(
        "session_id\tsubject\tdate\themisphere\ttask\tformat\tpath\tareas\n"
        + "".join(f"{s}\tTiny\t2016-10-{s[-2:]}\tleft\tcenter_out\tnwb\t{s}.nwb\tM1\n" for s in SESSIONS)
    )
    (lab / "config/lab.yaml").write_text(LAB_CONFIG)
    (lab / "Snakefile").write_text(LAB_SNAKEFILE)

    snakemake("--cores", "2", "--resources", "gpu=2", "--set-threads", "ner_train=1", cwd=lab)

    # the lab's own rule consumed our within-session table
    best = pd.read_csv(lab / "lab/best_cell.tsv", sep="\t")
    assert len(best) == 1 and best["method"].item() == "ner"
    assert best["test_cell"].item() in {f"{sid}/M1" for sid in SESSIONS} and best["target"].item() == "velocity"
    # every output of ours under the prefix; none in the lab's own results/ or logs/
    assert not (lab / "results").exists() and not (lab / "logs").exists()
    for sid in SESSIONS:
        assert (lab / f"ner/results/embeddings/ner/{sid}/M1/seed0.zarr").is_dir()
    assert (lab / "ner/results/figures/m1_lab/matrix_velocity.png").stat().st_size > 0
    assert (lab / "ner/results/stats/m1_lab/tests.tsv").is_file()
    # the recordings were read where the lab's config says, not under the prefix
    assert not (lab / "ner/recordings").exists()
    # nothing left to do, and the report of the whole (ours + the lab's) builds
    assert "Nothing to be done" in snakemake("-n", cwd=lab).stdout
    snakemake("--report", "report.html", cwd=lab)
    assert (lab / "report.html").stat().st_size > 100_000

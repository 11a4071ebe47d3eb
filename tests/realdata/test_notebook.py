"""The README's notebook example, run exactly as written (the block after ``<!-- notebook example -->``)."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

from tests.support.paths import CHEWIE, ROOT, requires_real


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- notebook example -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md has no notebook example block"
    return match.group(1)


@requires_real
def test_readme_notebook_example_runs_from_the_repository_root(monkeypatch):
    code = readme_example()
    assert "Chewie_20161007" in code and str(CHEWIE).endswith(
        "ner_paper_preprocessed/Chewie_20161007_neural_con_dis_index.mat"
    )
    if not (ROOT.parent / "shared/data/real/ner_paper_preprocessed/Chewie_20161007_neural_con_dis_index.mat").is_file():
        pytest.skip("the README's example reads ../shared/data/real beside the repository (absent here)")
    monkeypatch.chdir(ROOT)  # the README's relative path is from the repository root
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md notebook example", "exec"), namespace)
    matrix = namespace["matrix"]
    cells = ["Chewie-20161007/M1", "Chewie-20161007/PMd"]
    assert list(matrix.index) == cells and list(matrix.columns) == cells
    assert np.isfinite(matrix.values).all()
    # within each area NER's embedding decodes held-out velocity; across areas the aligned decoder too
    assert matrix.loc[cells[0], cells[0]] > 0.3 and matrix.loc[cells[1], cells[1]] > 0.3
    assert "M1" in printed.getvalue() and "PMd" in printed.getvalue()
    model = namespace["model"]
    assert model.get_params()["max_iterations"] == 300 and model.loss_.shape == (300,)

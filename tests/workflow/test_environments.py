"""The software environments match the code: every third-party package a rule's code imports is in the
conda env the rule names (``--sdm conda``) and pinned in envs/constraints.txt (the pip path), at the same
version in both. The imports are read from the code (the rule's script and every package module it
reaches, :func:`pipeline.stages.provenance.import_closure`), not kept by hand."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.embed.methods import METHODS
from pipeline.stages.provenance import import_closure
from tests.support.paths import ROOT

#: conda-forge names of distributions whose conda package is called otherwise than on PyPI
CONDA_NAMES = {"torch": "pytorch"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def rules() -> list[tuple[str, Path, Path]]:
    """(rule, conda env file, script) of every rule of workflow/rules/*.smk that runs a script."""
    found = []
    for smk in sorted((ROOT / "workflow/rules").glob("*.smk")):
        text = smk.read_text()
        starts = [(m.start(), m.group(1)) for m in re.finditer(r"^\s*rule (\w+):", text, re.M)]
        for (start, name), (end, _) in zip(starts, starts[1:] + [(len(text), "")]):
            block = text[start:end]
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', block)
            if script:
                assert conda, f"{smk.name}: rule {name} runs a script but names no conda env"
                found.append((name, (smk.parent / conda.group(1)).resolve(), (smk.parent / script.group(1)).resolve()))
    # `use rule base as name with:` runs the base rule's script in its env (maze_prepare, maze_train)
    base = {name: (env, script) for name, env, script in found}
    for smk in sorted((ROOT / "workflow/rules").glob("*.smk")):
        for parent, name in re.findall(r"^\s*use rule (\w+) as (\w+) with:", smk.read_text(), re.M):
            found.append((name, *base[parent]))
    return found


def third_party_imports(files) -> set[str]:
    """Top-level names of the non-standard-library modules that ``files`` import (anywhere in them)."""
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("pipeline", "__future__")}


@functools.cache
def _provided() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions(modules: set[str]) -> set[str]:
    """The installed distributions (normalised names) that provide ``modules``."""
    provided = _provided()
    missing = sorted(m for m in modules if m not in provided)
    assert not missing, f"imported but installed by no distribution here: {missing}"
    return {_normalise(provided[m][0]) for m in modules}


def conda_env(path: Path) -> dict[str, str]:
    """Normalised package name -> version of a conda env file (its conda and its pip dependencies)."""
    spec = yaml.safe_load(path.read_text())
    out = {}
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep.get("pip", []):
                name, _, version = pip_dep.partition("==")
                out[_normalise(name)] = version
        else:
            name, _, version = dep.partition("=")
            out[_normalise(name)] = version
    return out


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "envs/constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_normalise(name)] = version.strip()
    return pins


RULES = rules()


def test_every_rule_with_a_script_is_checked():
    names = {name for name, _, _ in RULES}
    assert {
        "simulate",
        "ingest",
        "prepare",
        "train",
        "decode_within",
        "cross_decode",
        "stats_within",
        "figures_latents",
        "latents_3d",
        "maze_train",
        "maze_decode",
        "export_nwb",
        "reproduction",
    } <= names


@pytest.mark.parametrize("rule, env, script", RULES, ids=[r for r, _, _ in RULES])
def test_the_rule_env_and_the_pins_hold_every_package_its_code_imports(rule, env, script):
    entries = [script]
    if script.name == "train.py":  # one rule trains every method: the registry imports them by name
        entries += sorted({target.split(":")[0] for target in METHODS.values()})
    needed = distributions(third_party_imports([script, *import_closure(entries)]))
    packages, pins = conda_env(env), constraints()
    missing_env = sorted(d for d in needed if CONDA_NAMES.get(d, d) not in packages)
    assert not missing_env, f"rule {rule}: {env.name} lacks {missing_env}"
    missing_pins = sorted(d for d in needed if d not in pins)
    assert not missing_pins, f"rule {rule}: envs/constraints.txt lacks {missing_pins}"
    differ = {
        d: (packages[CONDA_NAMES.get(d, d)], pins[d]) for d in needed if packages[CONDA_NAMES.get(d, d)] != pins[d]
    }
    assert not differ, f"rule {rule}: {env.name} and envs/constraints.txt pin other versions: {differ}"


def test_every_conda_env_installs_the_package_after_creation(tmp_path):
    """`--sdm conda`: each env a rule names has Snakemake's post-deploy script beside it, and that script,
    run as Snakemake runs it (the env's python first on PATH, the repository as working directory),
    installs this `pipeline` package into the env, so no rule script needs a sys.path insertion."""
    import os
    import subprocess

    envs = {env for _, env, _ in rules()}
    assert envs and all(env.with_suffix(".post-deploy.sh").is_file() for env in envs)
    assert len({env.with_suffix(".post-deploy.sh").resolve() for env in envs}) == 1  # one script for all
    script = next(iter(envs)).with_suffix(".post-deploy.sh")
    venv = tmp_path / "env"  # stands for the new conda env: a bare Python with pip
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    where = subprocess.run(
        [str(venv / "bin/python"), "-c", "import pipeline; print(pipeline.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()) == ROOT / "pipeline/__init__.py"
    # from anywhere else it refuses in one line instead of installing something wrong
    other = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert other.returncode == 1 and "NER_PIPELINE_ROOT" in other.stderr and len(other.stderr.splitlines()) == 1

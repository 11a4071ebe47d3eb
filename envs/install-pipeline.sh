#!/usr/bin/env bash
# Snakemake's post-deploy script of every env in envs/ (<env>.post-deploy.sh links here): with
# `--sdm conda`, Snakemake runs it inside each environment right after creating it. It installs this
# repository's `pipeline` package into the environment (editable, without dependencies: the env file
# pins them), so that the rule scripts import it exactly as they do from make's .venv.
# Snakemake runs it in its working directory, the repository root; when the workflow runs with
# --directory elsewhere, set NER_PIPELINE_ROOT to the repository.
set -euo pipefail
root="${NER_PIPELINE_ROOT:-$PWD}"
if [ ! -f "$root/pipeline/__init__.py" ] || [ ! -f "$root/pyproject.toml" ]; then
    echo "envs/install-pipeline.sh: $root is not the NER pipeline repository (no pipeline/ package);" \
        "set NER_PIPELINE_ROOT to it" >&2
    exit 1
fi
python -m pip install --quiet --no-deps --editable "$root"

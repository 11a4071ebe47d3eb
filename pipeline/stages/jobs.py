"""Job plumbing shared by the workflow's thin scripts (no snakemake import here).

:func:`workflow_job` is the one context every script runs in: :func:`job_logging` sends the package's
logging, warnings and stderr (tqdm progress) to the job's log file and records a failure as one
readable line before re-raising it; on success the job's provenance record (:func:`job_record`) is
written into every zarr store it produced (attribute ``provenance``) and into its declared
``provenance`` output, a JSON sidecar beside the tables and figures. ``pipeline provenance <file>``
prints it back (:mod:`pipeline.cli`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from os import PathLike
from pathlib import Path
from typing import Any

from pipeline.data.origin import versions
from pipeline.errors import InputError
from pipeline.stages.provenance import record_provenance


@contextlib.contextmanager
def job_logging(log_path: str | PathLike, level: int = logging.INFO):
    """Route logging and stderr of one workflow job to ``log_path`` for the duration of the block."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(True)
        log = logging.getLogger("pipeline.job")
        log.info("versions: %s", versions())
        old_stderr = sys.stderr
        sys.stderr = fh
        try:
            yield log
        except InputError as exc:
            log.error("bad input: %s", exc)
            raise
        except Exception:
            log.exception("job failed")
            raise
        finally:
            sys.stderr = old_stderr
            root.removeHandler(handler)
            logging.captureWarnings(False)


def job_record(job: Any) -> dict:
    """The provenance of one workflow job, from the ``snakemake`` object a script receives.

    Records the rule, its wildcards, every config value the job used (its ``params``: nothing else
    reaches a job), the code fingerprint, the seed (``{seed}`` wildcard or a ``seed`` param; None
    for deterministic stages), the device (``cpu`` here; training replaces it with its lease),
    threads, library versions and the input paths. No timestamps or host names, so a rerun that
    produces the same outputs writes the same record.
    """
    wildcards = dict(job.wildcards.items())
    params = dict(job.params.items())
    code = params.pop("code", None)
    seed = wildcards.get("seed", params.get("seed"))
    return {
        "rule": job.rule,
        "wildcards": wildcards,
        "config": params,
        "seed": None if seed is None else int(seed),
        "device": {"device": "cpu"},
        "threads": int(job.threads),
        "code_fingerprint": code,
        "versions": versions(),
        "inputs": [str(p) for p in job.input],
    }


@contextlib.contextmanager
def workflow_job(job: Any, level: int = logging.INFO):
    """Run a script's work inside the job's log and record its provenance when it succeeds.

    Args:
        job: the ``snakemake`` object of a ``script:`` rule (duck-typed: ``rule``, ``wildcards``,
            ``params``, ``threads``, ``input``, ``output``, ``log``).
        level: the log level of the job's log file.

    Raises:
        SystemExit: (status 1) on an :class:`~pipeline.errors.InputError`, after printing its one line.
    """
    record = job_record(job)
    try:
        with job_logging(job.log[0], level) as log:
            yield log
            sidecar = dict(job.output.items()).get("provenance")
            record_provenance(record, [str(p) for p in job.output if str(p) != str(sidecar)], sidecar)
            log.info("provenance: %s", json.dumps({k: record[k] for k in ("rule", "seed", "code_fingerprint")}))
    except InputError as exc:
        # bad input ends the job with its one line (file + field) as the last thing it prints: no
        # traceback through our own frames (the log file has the details)
        print(f"error in rule {job.rule}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def input_paths(value: Any, inputs: Any) -> Any:
    """``value`` (a rule's ``params``: nested lists, tuples and dicts naming the job's input files) with every
    path replaced by the job's own input file of that name.

    Rules pass the structure of their inputs (which store pairs with which, under which key) as params,
    written as the workflow names the files. Imported into another workflow as a module with a
    ``prefix:``, Snakemake prefixes the job's inputs but not its params; reading the files from the job's
    inputs keeps them right. Strings without a ``/`` (session ids, areas) are left as they are.

    Raises:
        ValueError: a path of ``value`` names no input of the job, or several.
    """
    files = [str(f) for f in inputs]
    named: dict[str, set[str]] = {}
    for f in files:
        for s in _suffixes(f):
            named.setdefault(s, set()).add(f)

    def swap(item):
        if isinstance(item, str) and "/" in item:
            found = named.get(item, set())
            if item in found:
                return item
            if len(found) != 1:
                raise ValueError(f"{item!r} names {len(found)} inputs of the job: {sorted(found)}")
            return next(iter(found))
        if isinstance(item, dict):
            return {k: swap(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return type(item)(swap(v) for v in item)
        return item

    return swap(value)


def _suffixes(path: str) -> list[str]:
    """``a/b/c`` -> ``[a/b/c, b/c, c]``: the names a path has under every prefix."""
    parts = path.split("/")
    return ["/".join(parts[i:]) for i in range(len(parts))]

"""Job plumbing shared by the workflow's thin scripts (no snakemake import here).

:func:`job_logging` sends the package's logging, warnings and stderr (tqdm progress) to the job's
log file, and records a failure as one readable line before re-raising it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from os import PathLike
from pathlib import Path

from pipeline.errors import InputError
from pipeline.provenance import versions


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

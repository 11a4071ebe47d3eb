"""``python -m pipeline ...`` runs the ``pipeline`` command line (:mod:`pipeline.cli`)."""

import sys

from pipeline.cli import main

sys.exit(main())

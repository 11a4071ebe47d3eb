"""Test helpers, imported as a package (``from tests.support.paths import ROOT``)."""

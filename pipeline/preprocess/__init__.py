"""Ingest dataset -> prepared dataset: spike binning and smoothing, trial windows and the chronological
split (``prepare``), movement labels (``labels``) and the maze trial subsets (``subsets``)."""

"""Storage below every stage: the zarr v3 stores and their three layouts (``store``), tidy TSV tables
(``tables``) and temp-then-rename writes of files and folders (``atomic``)."""

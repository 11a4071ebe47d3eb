"""Embeddings -> scores: decoders and their kNN searches (``decoding``, ``knn``), Procrustes alignment
(``alignment``), within-session and cross-cell tables (``crossdecode``), the maze condition
separation (``maze``) and the statistics over methods (``stats``)."""

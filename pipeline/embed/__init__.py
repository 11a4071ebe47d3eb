"""Prepared dataset -> embedding: the methods as scikit-learn estimators (``methods``), the network
parts of NER and piVAE (``nn``), fitting one (method, session, area, seed) (``fit``) and the one-GPU-
per-job lease (``device``)."""

"""The workflow glue, imported by the rules and the CLI, never by the science layers: configuration
and sheet validation (``config``), what a run computes and where it writes it (``plan``), the job
wrapper of every rule script (``jobs``) and provenance with code fingerprints derived from the import
graph (``provenance``)."""

"""The rules' entry points: one module per workflow script, named after it, each with one function
``run``: paths in -> the in-memory stage of its layer -> paths out.

A rule opens its inputs (:func:`pipeline.data.store.open_store`, :func:`pipeline.data.tables.read_tables`),
runs the in-memory stage (:func:`pipeline.io.read_recording`, :func:`pipeline.preprocess.prepare.prepare_dataset`,
:func:`pipeline.embed.fit.fit_embedding`, :func:`pipeline.analysis.crossdecode.within_table`, ...) and writes
its outputs atomically, so a failed job leaves nothing behind. A script makes one call,
``run(...)`` inside :func:`pipeline.stages.jobs.workflow_job`; a notebook calls the in-memory functions.
One module per rule keeps each rule's code fingerprint (the package modules its script reaches through
imports, :func:`pipeline.stages.provenance.import_closure`) to what that rule runs. The figure rules hand
their tables to :mod:`pipeline.report.figures`, whose stages draw straight to their image files.
"""

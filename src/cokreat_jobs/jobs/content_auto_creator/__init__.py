"""content-auto-creator: makes one content available in the target repository (JOBS.md, content-auto-creator).

`job.py` wires it into the shared Flink pipeline; the logic is plain Python in the other modules:
`settings` (the job's config), `validation` (skip reasons), `request` (the event, type-checked), `metadata`
(create/update split), `stages` (the stage table), `artifacts` (allowed sources, Drive links, the h5p and
size rules), `processor` (the steps, waiting, linking, failure handling), `checks` (its configuration checks).
"""

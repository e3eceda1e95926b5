"""auto-creator-v2: imports approved question sets (and their questions) into the graph and external stores.

`job.py` wires it (an import operator, then a link operator); the logic is plain Python: `settings` (the
job's config), `logic` (validation, merge, split, enrichment), `processor` (one import: package, source,
re-hosting, children, stores), `linker` (the link stage), `checks` (its configuration checks).
"""

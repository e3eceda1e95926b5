"""Floor 3: the only package that imports PyFlink. Imports :mod:`cokreat_jobs.core` and
:mod:`cokreat_jobs.adapters`.

- ``definition``: :class:`JobDefinition`, :class:`NextStage` (what a job contributes)
- ``pipeline``: the shared graph (Kafka in, parse, key, async operators, failed topic) and Flink's config
- ``jars``: where the connector jar and the Flink distribution are
- ``runner``: ``run_local(definition, cfg)`` on the MiniCluster, ``job_main`` for ``flink run -py``
"""

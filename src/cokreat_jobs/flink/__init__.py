"""Floor 3: the only package that imports PyFlink. Imports :mod:`cokreat_jobs.core` and
:mod:`cokreat_jobs.adapters`.

- ``definition``: :class:`JobDefinition`, :class:`NextStage` (what a job contributes)
- ``elements``: the typed elements between the operators (``Event``, ``Malformed``, ``Failed``, keyed-state's
  ``Tick``) and their
  Flink type ``ELEMENT_TYPE``
- ``operators``: ``RecordReader``, ``ParseAndKey``, the async stages ``ProcessEvents`` (keyed),
  ``ProcessRecords`` (unkeyed, parses the Kafka rows), ``ProcessHandedOn`` (a next stage), ``KeyedOrder``,
  and ``job_operators(definition, cfg)``
- ``inflight``: ``InFlight``, the keyed process function that keeps a stage's events in flight in keyed
  state by bucket, driven by tick rows (``task.async.operator = keyed-state``, opt-in), so a slow event holds
  only itself
- ``metrics``: ``metric_names(cfg)`` and ``FlinkCounters`` (the outcome counters and gauges)
- ``pipeline``: the shared graph (Kafka in, ``add_operators``, failed topic) and Flink's configuration
- ``testing``: ``PipelineDriver``, the operators driven in memory for unit tests (no Flink running)
- ``jars``: where the connector jar and the Flink distribution are
- ``runner``: ``run_local(definition, cfg)`` on the MiniCluster, ``job_main`` for ``flink run -py``
"""

"""Floor 1: the pure kernel. Standard library and well-kept libraries only; no sockets, no PyFlink.

- ``errors``: the error tree, each error carrying the failed topic's reason code; :func:`describe_exception`
- ``outcome``: :class:`Outcome` (success, skipped, failed, handed-on)
- ``event``: parsing a Kafka record, reading fields by dotted path
- ``failed``: failed-topic records
- ``config``: loading a job's HOCON config (:func:`load_config`, :class:`JobConfig`)
- ``checks``: configuration checks without I/O (:class:`Problem`, :class:`ConfigChecks`: URLs, Kafka, lists)
- ``logs``: JSON log lines, ``hash_id``
- ``redaction``: the one redaction of every text that leaves a job (logs, failed records, importError, labels)
- ``response``: :class:`HttpResponse`, the HTTP answer as a value
- ``counting``: :class:`Processor`, :class:`Metrics`, :class:`CountingProcessor`
- ``naming``: file and folder names (``slug``, ``safe_file_name``), the identifier rule
- ``sources``: allow-lists of URL sources (:class:`AllowedSources`: host, port and path-prefix rules)
- ``values``: facts about JSON-like values (``type_name``, ``compact_json``, ``deep_merge``)
- ``wait``: :func:`poll_until`, the one "poll with backoff until a condition holds or a deadline passes"
"""

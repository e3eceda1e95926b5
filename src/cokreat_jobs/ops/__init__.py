"""Floor 5: what an operator runs against a real deployment. Imports every floor below; never ``dev``.

- ``cluster``: submit a job's file to a cluster, stop it with a savepoint
- ``flink_rest``: the few calls of Flink's REST API the tools need
- ``kafka_io``: produce and consume records
- ``replay``: a job's failed events back to its input topic
- ``config_check``: every problem of a job's configuration, endpoints probed (``config check``)
- ``bulk``: bulk upload through the import API and the status of an import
"""

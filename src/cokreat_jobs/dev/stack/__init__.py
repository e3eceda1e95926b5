"""Local launchers: each real server the stack, the demo and the tests run, started on free ports.

- ``local``: ``cokreat-jobs stack up/down/status`` and ``.stack/endpoints.json``
- ``endpoints``: the config keys a job run takes from the stack
- ``kafka``, ``sandbox``, ``neo4j``, ``cassandra``, ``flink_cluster``: one server each
- ``neo4j_legacy``: a Neo4j 3.3 (Bolt 1 and HTTP), the line Sunbird ships, for the graph store's tests
- ``jobrun``: ``cokreat-jobs run`` as a process, watched through Flink's REST API
- ``sandbox_client``: the sandbox's admin paths
- ``process``, ``paths``: ports, processes, the stack's folder
"""

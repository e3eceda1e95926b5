"""Floor 6: what exists for one machine only. Nothing outside ``dev`` and ``cli`` imports it.

- ``stack``: local launchers (Kafka broker, sandbox, Neo4j, Cassandra, a standalone Flink cluster)
- ``sandbox``: the stand-in for the Sunbird services
- ``samples``: fixture builders (question sets and their import events)
- ``demo``: ``make demo``
- ``bench``: ``make bench``
- ``chaos``: ``make chaos``
"""

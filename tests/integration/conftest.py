"""The real Neo4j and Cassandra fixtures (`neo4j_server`, `cassandra_node`) live in tests/conftest.py, shared
with the end-to-end tests."""

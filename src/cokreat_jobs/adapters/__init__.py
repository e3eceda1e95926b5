"""Floor 2: the outside world behind small interfaces. Imports only :mod:`cokreat_jobs.core`.

- ``http``: :class:`ServiceClient` (aiohttp, timeouts, bounded retries), :class:`RetryPolicy`
- ``protection``: per-service cap, adaptive concurrency, rate limit, shared ``Retry-After`` pause
- ``download``: guarded downloads (SSRF checks at resolve time, size caps, redirects checked)
- ``drive``: Google Drive's REST API through aiohttp
- ``storage``: cloud storage through fsspec
- ``stores``: the graph and external stores (Neo4j, Cassandra, sqlite)
"""

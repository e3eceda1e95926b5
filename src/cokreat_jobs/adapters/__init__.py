"""Floor 2: the outside world behind small interfaces. Imports only :mod:`cokreat_jobs.core`.

- ``retry``: the one retry loop (:func:`call_with_retries`, :func:`call_with_retries_sync`),
  :class:`RetryPolicy`, :class:`Retryable` and the one ``Retry-After`` reading (:func:`retry_after_s`)
- ``http``: :class:`ServiceClient` (aiohttp, timeouts, bounded retries)
- ``protection``: per-service cap, adaptive concurrency, rate limit, shared ``Retry-After`` pause
- ``download``: guarded downloads (SSRF checks at resolve time, size caps, redirects checked)
- ``drive``: Google Drive's REST API through aiohttp
- ``storage``: cloud storage through fsspec
- ``stores``: the graph and external stores (Neo4j, Cassandra, sqlite)
"""

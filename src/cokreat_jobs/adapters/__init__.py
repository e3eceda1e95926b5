"""Floor 2: the outside world behind small interfaces. Imports only :mod:`cokreat_jobs.core`.

- ``retry``: the one retry loop (:func:`call_with_retries`, :func:`call_with_retries_sync`),
  :class:`RetryPolicy`, :class:`Retryable` and the one ``Retry-After`` reading (:func:`retry_after_s`)
- ``http``: :class:`ServiceClient` (aiohttp, timeouts, bounded retries; through a ``UrlGuard`` when its URLs
  come from an event)
- ``protection``: per-service cap, adaptive concurrency, rate limit, shared ``Retry-After`` pause
- ``download``: :class:`UrlGuard`, the one SSRF guard of event URLs (checks at resolve time, redirects checked
  hop by hop), and guarded downloads through it (size caps, local disk errors classified)
- ``drive``: Google Drive's REST API through aiohttp
- ``storage``: cloud storage through fsspec
- ``stores``: the graph and external stores (Neo4j, Cassandra, sqlite)
- ``config_checks``: start-up checks of the storage and store settings (no I/O)
"""

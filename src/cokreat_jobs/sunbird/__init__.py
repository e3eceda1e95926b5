"""Floor 3: the platform's contracts shared by the jobs, the operator tools and the sandbox.

Imports only :mod:`cokreat_jobs.core` and :mod:`cokreat_jobs.adapters`.

- ``content_api``: the content, search and hierarchy APIs (:class:`ContentApi`)
- ``linking``: linking an object into collection units, the one loop of both content jobs
  (:func:`link_into_collections`, :class:`CollectionRef`, :class:`LinkReport`)
- ``ecar``: reading an ECAR package safely
- ``definitions``: the object definitions (``schema.json`` + ``config.json``)
- ``imports``: the import API's rules, validation and event building (:func:`load_import_config`,
  :func:`request_objects`, :func:`prepare_object`, :func:`validate_prepared`, :func:`build_event`,
  :class:`ImportRefused`), shared by the sandbox's import API and ``cokreat-jobs import upload``
"""

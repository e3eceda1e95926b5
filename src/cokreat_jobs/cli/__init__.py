"""Floor 7, the composition root: the ``cokreat-jobs`` command (click).

- ``main``: the command group and ``--version`` (the console script ``cokreat_jobs.cli.main:main``)
- ``config``: the one ``resolve_config`` every command uses, and the job/config/set options
- ``stack``: ``stack up`` / ``stack down`` / ``stack status``
- ``jobs``: ``run`` / ``submit`` / ``stop``
- ``kafka``: ``produce`` / ``consume`` / ``replay``
- ``bulk``: ``import upload`` / ``import status``
- ``inspect``: ``inspect graph`` / ``inspect external``
- ``tools``: ``bench`` / ``chaos`` / ``demo`` (the tools of ``dev``)
"""

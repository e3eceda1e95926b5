"""Floor 7, the composition root: the ``cokreat-jobs`` command (click).

- ``main``: the command group and its commands
- ``bulk``: ``import upload`` / ``import status``
- ``inspect``: ``inspect graph`` / ``inspect external``
"""

"""coKreat's stream-processing jobs on Apache Flink, in Python.

The package stands on floors, each importing only from the floors below it (LAYOUT.md):
``core`` (1), ``adapters`` (2), ``sunbird`` and ``flink`` (3), ``jobs`` (4), ``ops`` (5), ``dev`` (6),
``cli`` (7).
"""

__version__ = "0.1.0"

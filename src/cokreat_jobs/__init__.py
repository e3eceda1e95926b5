"""coKreat's stream-processing jobs on Apache Flink, in Python."""

__version__ = "0.1.0"

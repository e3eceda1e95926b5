"""``make chaos``: fault-injection scenarios on a standalone Flink cluster, every event accounted for.

- ``scenarios``: the stack, the traffic, user-delete's scenarios, the run and its report
- ``content``: the scenarios of content-auto-creator and auto-creator-v2
"""

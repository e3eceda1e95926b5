"""``make demo``: each job against a sample batch whose outcomes are known in advance.

- ``main``: the run (stack up, the four parts, the summary)
- ``content``, ``frontdoor``, ``questionset``: the parts after user-delete's
"""

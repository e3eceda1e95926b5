"""``make chaos``: fault-injection scenarios on a standalone Flink cluster, every event accounted for.

- ``run``: ``cokreat-jobs chaos``, the run loop (``run_scenarios``, ``SCENARIOS``)
- ``scenarios``: user-delete's scenarios (tm-kill, broker-bounce, service-storm, poison, soak)
- ``content``: the scenarios of content-auto-creator and auto-creator-v2 (``<fault>:<job>``), with their
  batches and their accounting (``ContentRun``)
- ``faults``: a task manager killed, the broker bounced, the services stormed (then replay)
- ``accounting``: a scenario's job on the stack (``Run``) and its accounting from the sandbox's state, its
  request log and the failed topic (lost, duplicate effects, the defaults check)
- ``effects``: each job's effectful calls in the sandbox's request log; re-processing (repeated after a
  recovery), retries and duplicate effects counted from them
- ``protection``: no user id or seeded secret in the logs, the failed topic or importError
- ``resources``: memory, open files and temp files (the soak)
- ``config``: what every chaos run sets (the never-give-up settings, or the shipped defaults),
  user-delete's configuration, the seeded secrets (a service account content-auto-creator really uses)
- ``batches``: user-delete's batches, hostile records among them
- ``traffic``: the producer at a fixed rate and the failed topic's reader
- ``stack``: the broker, the sandbox and the standalone cluster under one directory
- ``report``: a scenario's ``Result``, the table and the results JSON
- ``log``: the run's progress lines

A module imports only modules listed below it.
"""

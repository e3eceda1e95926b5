"""Fixture builders shared by the demo, the benchmark, the chaos scenarios and the tests.

- ``question_sets``: question sets, their questions and their import events
- ``chart_configs``: the reference's deployed configs (Sunbird's ``datapipeline_jobs`` chart) rendered for a
  local stack
"""

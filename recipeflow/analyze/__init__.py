"""``recipeflow analyze``: filter statistics on a sample, without dropping anything.

The analysis data model (nodes, steps, statistics with percentiles and drop counts), the
analysis itself (plain Python over the engine's stage functions, so analyze sees what a run
would see at every node) and the report (terminal table and a self-contained HTML page). The
Prefect flow that runs it lives in ``orchestration``.
"""

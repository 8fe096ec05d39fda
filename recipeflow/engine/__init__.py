"""The engine: plain Python that turns a validated recipe into committed versions, no Prefect.

The planner compiles a recipe into stages (fused streamable operators, barriers) and cache
addresses; stage execution runs one stage over one shard and stores its output under that
address; barrier phases (signatures, resolve, apply); inputs and refresh decide what is new;
history keeps deduplication signatures of published documents; commit writes versions; train
fits classifiers. The orchestration package calls these functions from Prefect tasks; anything
else (a test, another orchestrator) can call them directly.
"""

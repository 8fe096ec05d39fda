"""Orchestration on Prefect: the only package of recipeflow that imports ``prefect``.

The recipe flow and its tasks (one task per stage and shard, cached by the engine's cache
address), task runners (threads, processes, Ray, Dask), work pools for CPU and GPU stages,
asset and artifact publishing, the local Prefect server for runs with no API configured,
the analyze flow, and deployments and schedules (``deploy``, ``serve``). Everything it runs is
in ``engine``; swapping orchestrators would replace this package alone.
"""

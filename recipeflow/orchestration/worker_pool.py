"""The ``processes`` executor's workers, forked from a fork server that imported their code once.

Prefect's ``ProcessPoolTaskRunner`` starts each worker with ``spawn``: a fresh interpreter that
imports Prefect and recipeflow again, 3 s and more of CPU per worker before its first task,
on the same cores as the run's own start-up. Here the workers come from ``multiprocessing``'s
``forkserver`` instead: one process (``fork_server``), started as soon as a run knows it uses
``processes`` (while the embedded server starts), imports the workers' code once; each worker
is a fork of it, ready in milliseconds. The fork server has no threads when it forks (it only
imports), so forking it is safe, unlike forking the flow run's process. Everything else is
Prefect's runner unchanged: tasks get the flow run's environment and context with each submit.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from prefect import task_runners
from prefect.task_runners import ProcessPoolTaskRunner

from recipeflow.orchestration import fork_server
from recipeflow.orchestration.parent_watch import die_with_pool_parent


class ForkedWorkerPool(ProcessPoolTaskRunner):
    """Prefect's process pool, its workers forked from a warm fork server; they end with the
    process that made the pool, even when it is killed (see ``parent_watch``)."""

    def __init__(self, max_workers: int) -> None:
        # The fork server is not started here: Prefect also makes runners in workers (copies
        # of the flow's, for the task context), which must not start fork servers of their own.
        super().__init__(max_workers=max_workers, initializer=die_with_pool_parent)

    def __enter__(self) -> ForkedWorkerPool:
        if not fork_server.usable() or multiprocessing.parent_process() is not None:
            # In a worker Prefect enters a copy of the flow's runner for each task's context;
            # it starts no process there, and must not start a fork server.
            return super().__enter__()
        fork_server.start_fork_server()  # when the run has not started it already
        # Prefect 3.8's runner asks for the "spawn" context by name; it gets the fork server's.
        spawn_only = task_runners.multiprocessing
        task_runners.multiprocessing = _ForkserverContexts()  # type: ignore[assignment]
        try:
            return super().__enter__()
        finally:
            task_runners.multiprocessing = spawn_only


class _ForkserverContexts:
    """``multiprocessing`` as Prefect's runner sees it while it starts: every context it asks
    for is the fork server's."""

    @staticmethod
    def get_context(method: str | None = None) -> Any:
        return multiprocessing.get_context("forkserver")

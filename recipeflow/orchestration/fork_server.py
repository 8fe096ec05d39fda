"""The fork server the ``processes`` executor's workers are forked from (see ``worker_pool``).

Standard library only, so that a run can start it before it imports Prefect: the sooner it
starts importing :data:`PRELOADED`, the sooner the first worker is ready.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import sys

# What every worker imports before its first task (see that module).
PRELOADED = ["recipeflow.orchestration.worker_imports"]


def usable() -> bool:
    """Whether this platform has ``multiprocessing``'s fork server (not Windows)."""
    return sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods()


def start_fork_server() -> None:
    """Start this process's fork server now, without waiting for it: it imports
    :data:`PRELOADED` while this process goes on; a pool entered later forks its workers from
    it. Does nothing when it runs already, or where there is none."""
    if usable():
        multiprocessing.set_forkserver_preload(PRELOADED)
        multiprocessing.forkserver.ensure_running()

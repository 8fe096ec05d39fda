"""Which task runs of a flow run started more than once, so the run can say what it retried.

A Ray node or Dask worker that dies in the middle of a task has the task run again on another
node: Ray and Dask re-submit it themselves, with the same Prefect task run, and Prefect never
hears of the lost attempt (its worker died before it could report). A task that raised is
retried by Prefect (``retries`` in :mod:`recipeflow.orchestration.tasks`). Either way the task's
body starts again, so each body notes its start in a small file under the run's cache root —
the one place every node of a cluster reaches — and the flow reads the notes once its tasks are
done. A killed run leaves its notes behind; ``recipeflow cache gc`` removes them with other
stale entries (kind ``attempts``).
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from prefect.context import TaskRunContext

from recipeflow.io import storage

ATTEMPTS_DIR = "attempts"  # under the cache root, one folder per flow run


def note_start(work_root: str) -> None:
    """Count one more start of the current task run (nothing outside a task run)."""
    context = TaskRunContext.get()
    if context is None or context.task_run.flow_run_id is None:
        return
    run = context.task_run
    url = storage.join(work_root, ATTEMPTS_DIR, str(run.flow_run_id), f"{run.id}.json")
    # One task run executes in one place at a time: a plain read then write is enough.
    try:
        earlier = storage.read_json(url)["attempts"]
    except FileNotFoundError:
        earlier = 0
    storage.write_json(url, {"task": run.name, "attempts": earlier + 1, "host": socket.gethostname(), "pid": os.getpid()})


def started(work_root: str, flow_run_id: str) -> list[dict[str, Any]]:
    """The notes of the flow run's task runs so far: task name, attempts, host and pid of the
    latest start."""
    folder = storage.join(work_root, ATTEMPTS_DIR, flow_run_id)
    return [storage.read_json(url) for url in storage.find_files(folder)]


def retried(work_root: str, flow_run_id: str) -> list[dict[str, Any]]:
    """The flow run's task runs that started more than once (``task``, ``attempts``), by task
    name; the notes are removed, as the run no longer needs them."""
    notes = started(work_root, flow_run_id)
    storage.remove(storage.join(work_root, ATTEMPTS_DIR, flow_run_id), recursive=True)
    if storage.is_local(work_root):  # leave no empty folder (object stores have none)
        with contextlib.suppress(OSError):  # another run's notes are still there
            os.rmdir(storage.join(work_root, ATTEMPTS_DIR))
    again = [{"task": n["task"], "attempts": n["attempts"]} for n in notes if n["attempts"] > 1]
    return sorted(again, key=lambda n: n["task"])

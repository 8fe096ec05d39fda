"""The ``processes`` executor's workers are forks of one fork server that imported their code,
not fresh interpreters; they answer to the flow's process and start no fork server of their
own (Prefect enters a copy of the flow's runner in each worker). Real Prefect engine, embedded
server, real processes."""

from __future__ import annotations

import multiprocessing
import os
import sys

import psutil
from prefect import flow, task

from recipeflow.orchestration import fork_server
from recipeflow.orchestration.worker_pool import ForkedWorkerPool


@task
def describe_worker() -> dict:
    me = psutil.Process()
    return {
        "pid": os.getpid(),
        "parent": me.ppid(),
        "pool_parent": multiprocessing.parent_process().pid,
        "children": [" ".join(child.cmdline()[:4]) for child in me.children()],
        "preloaded": [name for name in fork_server.PRELOADED if name in sys.modules],
        "watching": [t.name for t in __import__("threading").enumerate() if t.name == "recipeflow-parent-watch"],
    }


@flow(task_runner=ForkedWorkerPool(max_workers=2))
def describe_workers(count: int) -> list[dict]:
    return [future.result() for future in [describe_worker.submit() for _ in range(count)]]


def test_workers_are_forks_of_the_fork_server_and_watch_the_flow_process(prefect_api):
    fork_server.start_fork_server()
    described = describe_workers(4)
    workers = {d["pid"] for d in described}
    assert 1 <= len(workers) <= 2
    servers = [c for c in psutil.Process().children() if "forkserver" in " ".join(c.cmdline())]
    assert len(servers) == 1, [c.cmdline() for c in psutil.Process().children()]
    for d in described:
        assert d["parent"] == servers[0].pid  # forked by the fork server, not spawned from here
        assert d["pool_parent"] == os.getpid()  # the process they die with
        assert d["children"] == []  # no fork server of their own
        assert d["preloaded"] == fork_server.PRELOADED
        assert d["watching"] == ["recipeflow-parent-watch"]

"""Real multi-node Ray and Dask clusters on 127.0.0.1, as they run on several machines: a Ray
head and worker nodes started by `ray start` (each node its own raylet and object store), a
Dask scheduler and workers started by `dask scheduler` / `dask worker`. Every node is a process
group of its own, stopped by its PID — or killed, to lose a node in the middle of a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import psutil

from tests.s3 import _free_port
from tests.servers import stop_process_group

STARTUP_TIMEOUT = 180


@dataclass
class Cluster:
    address: str  # what `run.address` takes
    nodes: list[subprocess.Popen] = field(default_factory=list)  # the worker nodes, in start order

    def kill_node(self, index: int) -> None:
        """SIGKILL one worker node, as when its machine is lost: its raylet (or nanny) and every
        process under it, in any process group (Ray's workers have their own)."""
        node = self.nodes[index]
        under = psutil.Process(node.pid).children(recursive=True)
        os.killpg(node.pid, signal.SIGKILL)
        for process in under:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        node.wait(timeout=30)

    def node_of(self, pid: int) -> int | None:
        """Which worker node a process (a task's worker) runs under: the node's process is its
        ancestor (Ray's workers have process groups of their own)."""
        try:
            ancestors = {p.pid for p in psutil.Process(pid).parents()}
        except psutil.NoSuchProcess:
            return None
        return next((i for i, node in enumerate(self.nodes) if node.pid in ancestors), None)


def _started(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def _wait(ready, processes: list[subprocess.Popen], logs: list[Path]) -> None:
    deadline = time.time() + STARTUP_TIMEOUT
    while not ready():
        dead = [log for p, log in zip(processes, logs) if p.poll() is not None]
        assert not dead and time.time() < deadline, "\n".join(log.read_text()[-3000:] for log in dead or logs)
        time.sleep(0.5)


@contextmanager
def ray_cluster(tmp_path: Path, env: dict[str, str], nodes: int = 2) -> Iterator[Cluster]:
    """A Ray head that runs no tasks (``--num-cpus 0``) and ``nodes`` worker nodes of one CPU
    each, joined with ``ray start --address``. Nodes on one machine each need their own ports:
    the OS picks them (0), but for the dashboard agent's, whose default is fixed."""
    env = {**os.environ, **env}
    port = _free_port()
    ray = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
           "--node-ip-address", "127.0.0.1"]
    status = [sys.executable, "-m", "ray.scripts.scripts", "status", f"--address=127.0.0.1:{port}"]

    def alive() -> int:
        out = subprocess.run(status, env=env, capture_output=True, text=True).stdout
        return out.split("Pending:")[0].count(" node_")  # the "Active:" section

    with ExitStack() as stack:
        logs = [tmp_path / "ray-head.log"]
        head = _started(ray + ["--head", "--port", str(port), "--num-cpus", "0", "--include-dashboard", "false",
                               "--temp-dir", tempfile.mkdtemp(prefix="rf-ray-")],  # short: socket paths
                        logs[0], env)
        stack.callback(stop_process_group, head)
        cluster = Cluster(f"127.0.0.1:{port}")
        for i in range(nodes):  # one at a time: nodes starting together race for the same ports
            logs.append(tmp_path / f"ray-node-{i}.log")
            node = _started(ray + [f"--address=127.0.0.1:{port}", "--num-cpus", "1", "--node-manager-port", "0",
                                   "--min-worker-port", "0", "--max-worker-port", "0",
                                   "--dashboard-agent-listen-port", str(_free_port())], logs[-1], env)
            stack.callback(stop_process_group, node)
            cluster.nodes.append(node)
            _wait(lambda: alive() >= i + 2, [head, *cluster.nodes], logs)
        yield cluster


@contextmanager
def dask_cluster(tmp_path: Path, nodes: int = 2) -> Iterator[Cluster]:
    """A ``dask scheduler`` and ``nodes`` ``dask worker`` processes (a nanny and one
    single-threaded worker each)."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    with ExitStack() as stack:
        logs = [tmp_path / "dask-scheduler.log"]
        scheduler = _started([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", str(port), "--no-dashboard"], logs[0], dict(os.environ))
        stack.callback(stop_process_group, scheduler)
        cluster = Cluster(address)
        for i in range(nodes):
            logs.append(tmp_path / f"dask-worker-{i}.log")
            node = _started([sys.executable, "-m", "distributed.cli.dask_worker", address, "--name", f"node-{i}",
                             "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                            logs[-1], dict(os.environ))
            stack.callback(stop_process_group, node)
            cluster.nodes.append(node)

        def joined() -> bool:
            try:
                with Client(address, timeout=5) as client:
                    return len(client.scheduler_info()["workers"]) >= nodes
            except OSError:
                return False

        _wait(joined, [scheduler, *cluster.nodes], logs)
        yield cluster

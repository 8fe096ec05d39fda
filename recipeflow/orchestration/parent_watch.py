"""Child processes that die with the run.

``recipeflow run`` starts children: the embedded Prefect server and, with the ``processes``
executor, worker processes. A SIGKILL of the run gives it no chance to stop them, and they
would run on (a gigabyte, for minutes). So each child watches its parent: a daemon thread
polls the parent pid and ends the child once it has been re-parented, i.e. its parent died.
Polling (rather than Linux's PR_SET_PDEATHSIG) works on every POSIX system and is not fooled
by the parent *thread* that started the child ending before the run does.

Children recipeflow does not start itself cannot watch: a local Ray cluster's agents outlive
their raylet by a minute. For those, :func:`kill_descendants_on_death` starts a guard process
that follows this process's descendants and kills them if this process dies without exiting.

This module imports only the standard library: the server starts through it, by file path
(``python .../parent_watch.py PID -m uvicorn ...``).
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.connection
import os
import runpy
import subprocess
import sys
import threading
import time

POLL_SECONDS = 0.5


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` is no longer its parent (checked every
    :data:`POLL_SECONDS`); a process pool's ``initializer`` or a child's first call."""
    if os.getppid() != parent_pid:  # the parent died before this child got here
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(POLL_SECONDS)
        os._exit(1)  # no cleanup to wait for: whatever this child was doing is orphaned work

    threading.Thread(target=watch, name="recipeflow-parent-watch", daemon=True).start()


def die_with_pool_parent() -> None:
    """A process pool worker's ``initializer``: end this worker when the process that made the
    pool dies. Its parent pid says nothing here (a ``forkserver`` worker's parent is the fork
    server); ``multiprocessing`` gives the pool's process a sentinel that closes when it dies."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if not parent.is_alive():  # the pool's process died before this worker got here
        os._exit(1)

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="recipeflow-parent-watch", daemon=True).start()


_guard: subprocess.Popen[bytes] | None = None
_RELEASE = b"exited\n"


def kill_descendants_on_death() -> None:
    """Start (once per process) a guard that kills every process it saw descend from this one
    if this one dies without exiting normally (SIGKILL, OOM killer). A normal exit releases
    the guard from ``atexit``; the guard learns of a death from its stdin closing."""
    global _guard
    if _guard is not None or os.name != "posix":
        return
    _guard = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--guard", str(os.getpid())],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C of the run's group must not stop it first
    )
    atexit.register(_release_guard)


def _release_guard() -> None:
    if _guard is not None and _guard.stdin is not None:
        try:
            _guard.stdin.write(_RELEASE)
            _guard.stdin.close()
        except OSError:
            pass


def _guard_descendants(parent_pid: int) -> None:
    """The guard: follow ``parent_pid``'s descendants until its stdin says it exited (leave
    them) or closes without saying so (it died: kill those still running)."""
    import psutil  # a dependency of Ray and Dask, the executors that need this guard

    parent = psutil.Process(parent_pid)
    ended: list[bytes] = []
    reader = threading.Thread(target=lambda: ended.append(sys.stdin.buffer.read()), daemon=True)
    reader.start()
    seen: dict[int, psutil.Process] = {}
    while reader.is_alive():
        try:
            for child in parent.children(recursive=True):
                if child.pid != os.getpid():
                    seen.setdefault(child.pid, child)
        except psutil.Error:
            pass  # the parent is gone: stdin closes at once
        reader.join(POLL_SECONDS)
    if ended and ended[0].startswith(_RELEASE):
        return
    for process in seen.values():
        try:
            if process.is_running():  # psutil compares start times: never a reused pid
                process.kill()
        except psutil.Error:
            pass


def main(argv: list[str]) -> None:
    """``PARENT_PID -m MODULE ARGS...``: run MODULE as ``python -m`` would, watching the parent;
    ``--guard PARENT_PID``: see :func:`kill_descendants_on_death`."""
    if len(argv) == 2 and argv[0] == "--guard":
        _guard_descendants(int(argv[1]))
        return
    if len(argv) < 3 or argv[1] != "-m":
        raise SystemExit("usage: parent_watch.py PARENT_PID -m MODULE [ARGS...] | --guard PARENT_PID")
    die_with_parent(int(argv[0]))
    sys.argv = [argv[2], *argv[3:]]
    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    # Run by file path (the child need not find recipeflow on its path): this file's folder,
    # which Python put first on the path, must not shadow the modules the child imports.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    main(sys.argv[1:])

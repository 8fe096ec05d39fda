"""Child processes that die with the run.

``recipeflow run`` starts children: the embedded Prefect server and, with the ``processes``
executor, worker processes. A SIGKILL of the run gives it no chance to stop them, and they
would run on (a gigabyte, for minutes). So each child watches its parent: a daemon thread
polls the parent pid and ends the child once it has been re-parented, i.e. its parent died.
Polling (rather than Linux's PR_SET_PDEATHSIG) works on every POSIX system and is not fooled
by the parent *thread* that started the child ending before the run does.

This module imports nothing heavy: the server starts through it
(``python -m recipeflow.orchestration.parent_watch PID -m uvicorn ...``).
"""

from __future__ import annotations

import os
import runpy
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


def main(argv: list[str]) -> None:
    """``PARENT_PID -m MODULE ARGS...``: run MODULE as ``python -m`` would, watching the parent."""
    if len(argv) < 3 or argv[1] != "-m":
        raise SystemExit("usage: python -m recipeflow.orchestration.parent_watch PARENT_PID -m MODULE [ARGS...]")
    die_with_parent(int(argv[0]))
    sys.argv = [argv[2], *argv[3:]]
    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])

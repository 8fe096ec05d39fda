"""A local Prefect server kept between runs: started by the first run on a Prefect home, used
by the runs after it, stopped once no run has used it for a while.

Starting a Prefect server costs seconds (importing its app alone is 2.5 s), which every run
that started its own paid before any operator work, and its UI ended with the run. So, as
Bazel and Gradle keep their servers, ``recipeflow run`` without ``PREFECT_API_URL`` starts one
local server per Prefect home (with the UI) that outlives the run, and later runs report to it.
It stops ``RECIPEFLOW_SERVER_IDLE_SECONDS`` (default 600) after the last run using it ended;
``0`` gives each run a server of its own that ends with it, as before.

The state lives in ``$PREFECT_HOME/recipeflow-server/``: ``server.json`` (pid, port, the
settings it was started with), ``leases/`` (one file per run using it, named by the run's pid:
a killed run's lease is recognised by its dead pid), ``server.log`` (the server's errors) and
``lock``, an ``flock`` held while a run takes a lease or the server decides to stop, so a run
never reports to a server that is going away.

The server process runs this file by path (``python .../kept_server.py STATE_DIR IDLE -m
uvicorn ...``): that side imports only the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

IDLE_ENV = "RECIPEFLOW_SERVER_IDLE_SECONDS"
DEFAULT_IDLE_SECONDS = 600.0
STATE_FOLDER = "recipeflow-server"

# Settings that change which database the server opens or how it serves: a server started with
# others is not this run's server (a run with different ones gets a server of its own).
_KEY_PREFIXES = ("PREFECT_HOME", "PREFECT_SERVER_", "PREFECT_API_DATABASE_", "PREFECT_UI_")


class ServerSettingInvalid(ValueError):
    """``RECIPEFLOW_SERVER_IDLE_SECONDS`` is not a number of seconds."""


def idle_seconds() -> float:
    """How long a kept server waits for the next run; 0: no kept server."""
    text = os.environ.get(IDLE_ENV, "").strip()
    if not text:
        return DEFAULT_IDLE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ServerSettingInvalid(
            f"{IDLE_ENV}={text!r}: give the seconds a local Prefect server waits for the next run "
            f"(default {DEFAULT_IDLE_SECONDS:.0f}), or 0 for a server that ends with each run"
        )
    return value


def state_dir() -> Path:
    """This Prefect home's kept-server folder (the home as Prefect finds it: ``PREFECT_HOME``,
    else ``~/.prefect``)."""
    home = os.environ.get("PREFECT_HOME") or "~/.prefect"
    return Path(home).expanduser().resolve() / STATE_FOLDER


def _settings_key() -> str:
    from importlib.metadata import version

    settings = sorted((k, v) for k, v in os.environ.items() if k.startswith(_KEY_PREFIXES))
    described = json.dumps([sys.executable, version("prefect"), str(state_dir()), settings])
    return hashlib.sha256(described.encode()).hexdigest()[:16]


@dataclass
class KeptServer:
    """A run's hold on the kept server: its address, and the lease that keeps it up."""

    port: int
    pid: int
    lease: Path
    idle_seconds: float  # as the server was started with: it stops after so long without runs
    set_ui_url: bool = False  # PREFECT_UI_URL was set to this server's UI for the run

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120) -> None:
        """Block until the API answers (the run that started it waits for its start-up)."""
        wait_until_answering(self.api_url, self._exit_message, timeout)

    def _exit_message(self) -> str | None:
        if pid_alive(self.pid):
            return None
        log = self.lease.parent.parent / "server.log"
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        return f"recipeflow's local Prefect server (pid {self.pid}) exited; {log}:\n{tail}"

    def stop(self) -> None:
        """Give the lease back: the server stays for the next run (see the module's note)."""
        self.lease.unlink(missing_ok=True)


def wait_until_answering(api_url: str, exited: Callable[[], str | None], timeout: float) -> None:
    """Poll ``api_url``'s health until it answers; ``exited`` says why the server's process is
    gone (None while it runs), which ends the wait with that message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (message := exited()) is not None:
            raise RuntimeError(message)
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.05)
    raise RuntimeError(f"the local Prefect server at {api_url} did not answer within {timeout:.0f} s")


def acquire() -> KeptServer | None:
    """A lease on this Prefect home's kept server, started now (without waiting for it) when
    none runs. One started with other settings (another Prefect version or database) is
    replaced when no run uses it; while runs do, this returns None (the caller starts a server
    of its own)."""
    folder = state_dir()
    (folder / "leases").mkdir(parents=True, exist_ok=True)
    key = _settings_key()
    with _locked(folder):
        state = read_state(folder)
        if state is not None and state["key"] != key:
            if live_leases(folder):
                return None
            (folder / "server.json").unlink()
            _terminate(state["pid"])  # before a new server opens the same database
            state = None
        if state is None:
            state = _launch(folder, key, idle_seconds())
        lease = folder / "leases" / f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
        lease.touch()
    return KeptServer(port=state["port"], pid=state["pid"], lease=lease, idle_seconds=state["idle_seconds"])


def read_state(folder: Path) -> dict | None:
    """The kept server's record, when its process still runs (a stale record is removed)."""
    try:
        state = json.loads((folder / "server.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    if _is_kept_server(state["pid"], folder):
        return state
    (folder / "server.json").unlink(missing_ok=True)
    return None


def live_leases(folder: Path) -> list[int]:
    """Pids of the runs holding a lease; the leases of runs that died are removed."""
    pids = []
    for lease in (folder / "leases").glob("*"):
        pid = int(lease.name.split(".")[0])
        if pid_alive(pid):
            pids.append(pid)
        else:
            lease.unlink(missing_ok=True)
    return pids


def stop(folder: Path, force: bool = False) -> tuple[dict | None, list[int]]:
    """Stop the kept server now: returns its record (None: none ran) and the pids of runs still
    using it; with such runs it is stopped only when ``force``."""
    with _locked(folder):
        state = read_state(folder)
        users = live_leases(folder) if state else []
        if state is None or (users and not force):
            return state, users
        (folder / "server.json").unlink()
        _terminate(state["pid"])
    return state, users


def _terminate(pid: int) -> None:
    """Stop a server as Ctrl-C would (its shutdown ends its database work), else kill it."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def describe() -> str:
    """``recipeflow server status``: where this Prefect home's kept server is, or that none runs."""
    folder = state_dir()
    state = read_state(folder) if folder.exists() else None
    if state is None:
        return f"no local Prefect server runs for this Prefect home ({folder.parent})"
    url = f"http://127.0.0.1:{state['port']}"
    return (f"local Prefect server: UI {url}, API {url}/api, pid {state['pid']}, stops after "
            f"{state['idle_seconds']:g} s without runs; runs using it now: {len(live_leases(folder))}")


def stop_now(force: bool = False) -> tuple[bool, str]:
    """``recipeflow server stop``: (whether the command succeeded, what to say)."""
    folder = state_dir()
    state, users = stop(folder, force=force) if folder.exists() else (None, [])
    if state is None:
        return True, "no local Prefect server runs for this Prefect home"
    if users and not force:
        return False, (f"runs with pids {', '.join(map(str, users))} report to the local Prefect "
                       f"server (pid {state['pid']}); stop them first, or use --force")
    return True, f"stopped the local Prefect server (pid {state['pid']})"


def _launch(folder: Path, key: str, idle: float) -> dict:
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None, "prefect is not installed"
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_UI_URL")}
        env.update({
            # A full server, as `prefect server start` runs it: the UI and the services.
            "PREFECT_UI_ENABLED": "1", "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_API_PORT": str(port),
            # See prefect_server._SERVER_ENV: no import of every installed collection at start.
            "PREFECT_API_BLOCKS_REGISTER_ON_START": "0", "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "0",
        })
        with open(folder / "server.log", "ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable, os.path.abspath(__file__), str(folder), repr(idle),
                    "-m", "uvicorn",
                    "--app-dir", os.path.dirname(os.path.dirname(spec.origin)),
                    "--factory", "prefect.server.api.server:create_app",
                    "--fd", str(sock.fileno()), "--log-level", "error", "--lifespan", "on",
                ],
                env=env, cwd=folder, pass_fds=(sock.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True,  # not this run's: a Ctrl-C of the run must not stop it
            )
    state = {"pid": process.pid, "port": port, "key": key, "idle_seconds": idle,
             "started": time.time()}
    temporary = folder / f"server.json.{os.getpid()}"
    temporary.write_text(json.dumps(state))
    temporary.replace(folder / "server.json")
    return state


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    import fcntl

    with open(folder / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _is_kept_server(pid: int, folder: Path) -> bool:
    """True when ``pid`` is this folder's server, not a process that took its pid later."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            arguments = handle.read().split(b"\0")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: trust the pid
        return pid_alive(pid)
    return os.path.abspath(__file__).encode() in arguments and str(folder).encode() in arguments


# --------------------------------------------------------------------------------------------
# The server's side
# --------------------------------------------------------------------------------------------


def _stop_when_idle(folder: Path, idle: float) -> None:
    """Stop this server once no run has held a lease for ``idle`` seconds."""
    last_used = time.monotonic()
    while True:
        time.sleep(min(1.0, max(idle / 4, 0.1)))
        if live_leases(folder):
            last_used = time.monotonic()
            continue
        if time.monotonic() - last_used < idle:
            continue
        with _locked(folder):
            if live_leases(folder):  # a run took a lease meanwhile
                last_used = time.monotonic()
                continue
            state = read_state(folder)
            if state is not None and state["pid"] == os.getpid():
                (folder / "server.json").unlink()
        break
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own shutdown: the lifespan ends cleanly
    time.sleep(30)
    os._exit(0)


def main(argv: list[str]) -> None:
    """``STATE_DIR IDLE_SECONDS -m MODULE ARGS...``: run MODULE as ``python -m`` would, and stop
    it when idle."""
    if len(argv) < 4 or argv[2] != "-m":
        raise SystemExit("usage: kept_server.py STATE_DIR IDLE_SECONDS -m MODULE [ARGS...]")
    folder, idle = Path(argv[0]), float(argv[1])
    threading.Thread(target=_stop_when_idle, args=(folder, idle), name="recipeflow-idle-stop",
                     daemon=True).start()
    sys.argv = [argv[3], *argv[4:]]
    runpy.run_module(argv[3], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    # Run by file path: this file's folder, first on the path, must not shadow other modules.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    main(sys.argv[1:])

"""The local Prefect server of a run without ``PREFECT_API_URL``, shared with worker
processes, started early.

With no ``PREFECT_API_URL``, Prefect starts a temporary server in the process that runs the
flow. Worker processes of the ``processes`` executor would each start their own, which costs
seconds and records their task runs elsewhere. So recipeflow starts the server itself and
exports its URL, which child processes inherit: this Prefect home's kept server
(``kept_server``: it outlives the run and serves the next ones, with the UI), or, with
``RECIPEFLOW_SERVER_IDLE_SECONDS=0``, an embedded one that ends with the run.

Either runs Prefect's server app as Prefect does, but is launched without importing Prefect's
server code here (2-3 s), so that a start-up overlaps this process's own imports: call
:func:`start_embedded_server` first, import and plan, then enter :func:`prefect_api`, which
waits until the server answers.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from typing import IO, Iterator, Union

from recipeflow.orchestration import kept_server, parent_watch
from recipeflow.orchestration.kept_server import KeptServer

# What the command line says after a run on the embedded server, whose UI ends with the run.
EMBEDDED_NOTE = (
    "This run used an embedded Prefect server that stopped with it. To keep runs and see them in "
    "the UI: `prefect server start` (UI at http://127.0.0.1:4200), then "
    "`export PREFECT_API_URL=http://127.0.0.1:4200/api` before `recipeflow run`. The committed "
    "versions stay readable: `recipeflow versions ROOT`, `recipeflow lineage ROOT`."
)
_SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
    # At start Prefect imports every installed collection (prefect-aws, prefect-dask with
    # distributed, prefect-ray) to list their block types: seconds of every run, for a catalog
    # nobody browses here (no UI). A block saved later registers its own type.
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "0", "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "0",
}


class EmbeddedServer:
    """A temporary Prefect server in a child process, on a free port of 127.0.0.1.

    The socket is bound here and handed to uvicorn (``--fd``), so the port is known at once
    and no other process can take it in between.
    """

    set_ui_url = False  # PREFECT_UI_URL was set for this server's lifetime
    ui_url = ""  # none: no UI, and gone when the run ends

    def __init__(self) -> None:
        import importlib.util

        spec = importlib.util.find_spec("prefect")
        assert spec is not None and spec.origin is not None, "prefect is not installed"
        self._errors: IO[bytes] = tempfile.TemporaryFile()
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [
                    # Through parent_watch: the server ends when this process dies, even by SIGKILL.
                    sys.executable, parent_watch.__file__, str(os.getpid()),
                    "-m", "uvicorn",
                    "--app-dir", os.path.dirname(os.path.dirname(spec.origin)),
                    "--factory", "prefect.server.api.server:create_app",
                    "--fd", str(sock.fileno()),
                    "--log-level", "error", "--lifespan", "on",
                ],
                env={**os.environ, **_SERVER_ENV},
                pass_fds=(sock.fileno(),),
                stdout=subprocess.DEVNULL,
                stderr=self._errors,
            )

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait_ready(self, timeout: float = 120) -> None:
        """Block until the API answers (a loaded machine can take a while to start it)."""
        kept_server.wait_until_answering(self.api_url, self._exit_message, timeout)

    def _exit_message(self) -> str | None:
        assert self.process is not None
        status = self.process.poll()
        if status is None:
            return None
        self._errors.seek(0)
        detail = self._errors.read().decode("utf-8", "replace")[-4000:]
        return f"Prefect's embedded server exited with status {status}:\n{detail}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self._errors.close()


def _refresh_prefect_settings() -> None:
    """Make Prefect, if already imported, read ``PREFECT_API_URL`` again. Its background
    services (log and event workers) read the process-wide settings, not the caller's."""
    context = sys.modules.get("prefect.context")
    if context is not None:
        context.refresh_global_settings_context()


LocalServer = Union[EmbeddedServer, KeptServer]
_started: list[LocalServer] = []  # the local servers this process's runs use now
_last_started: list[LocalServer] = []  # the one the latest run used (for the closing note)


def no_lasting_server() -> bool:
    """True when this process's runs report to no server of their own: none is configured, or
    the one ``PREFECT_API_URL`` names is a local one recipeflow started (see below)."""
    url = os.environ.get("PREFECT_API_URL")
    return not url or any(url == server.api_url for server in _started)


def start_embedded_server() -> LocalServer | None:
    """Start a local server now, without waiting for it, and export its URL (before Prefect is
    imported, so every part of Prefect sees it); None when ``PREFECT_API_URL`` already names a
    server. The local server is this Prefect home's kept server (``kept_server``: started by
    the first run, reused by the next), or, with ``RECIPEFLOW_SERVER_IDLE_SECONDS=0`` or a kept
    server of other settings, one that ends with the run."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    server: LocalServer | None = None
    if os.name == "posix" and kept_server.idle_seconds() > 0:
        server = kept_server.acquire()
    if server is None:
        server = EmbeddedServer()
    _started.append(server)
    _last_started[:] = [server]
    os.environ["PREFECT_API_URL"] = server.api_url
    if "PREFECT_UI_URL" not in os.environ:
        # Prefect logs "View at <UI URL>/runs/..." links: the kept server's UI, and none for a
        # server without a UI that is gone when the run ends (the closing note says what to do).
        os.environ["PREFECT_UI_URL"] = server.ui_url if isinstance(server, KeptServer) else ""
        server.set_ui_url = True
    _refresh_prefect_settings()
    return server


def closing_note() -> str:
    """What the command line says after a run on a local server: where its UI is, how long it
    stays, or (a server that ended with the run) how to keep runs."""
    server = _last_started[0] if _last_started else None
    if not isinstance(server, KeptServer):
        return EMBEDDED_NOTE
    minutes = server.idle_seconds / 60
    return (
        f"Prefect UI: {server.ui_url} (recipeflow's local Prefect server for this Prefect home; "
        f"later runs report to it, and it stops after {minutes:g} minutes without runs: "
        f"`recipeflow server stop` stops it now, {kept_server.IDLE_ENV}=0 gives each run a server "
        "that ends with it). For a team's lasting server: `prefect server start`, then "
        "`export PREFECT_API_URL=http://127.0.0.1:4200/api`."
    )


@contextlib.contextmanager
def prefect_api(server: LocalServer | None = None) -> Iterator[str]:
    """Yield the API URL in use, once it answers: that of ``server`` (started earlier by
    :func:`start_embedded_server`), else the configured one, else a new embedded server's."""
    if server is None:
        if os.environ.get("PREFECT_API_URL"):
            yield os.environ["PREFECT_API_URL"]
            return
        server = start_embedded_server()
        assert server is not None
    try:
        server.wait_ready()
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        stop_embedded_server(server)


def stop_embedded_server(server: LocalServer | None) -> None:
    """Stop a server :func:`start_embedded_server` started, or give the kept server's lease
    back (None: nothing to do), and take its URL back out of the environment."""
    if server is None:
        return
    if "prefect.logging.handlers" in sys.modules:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # send buffered logs while the server is still up
    if os.environ.get("PREFECT_API_URL") == server.api_url:
        os.environ.pop("PREFECT_API_URL")
        if server.set_ui_url:
            os.environ.pop("PREFECT_UI_URL", None)
        _refresh_prefect_settings()
    if server in _started:
        _started.remove(server)
    server.stop()

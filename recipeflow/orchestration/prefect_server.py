"""Prefect's embedded mode, shared with worker processes, started early.

With no ``PREFECT_API_URL``, Prefect starts a temporary server in the process that runs the
flow. Worker processes of the ``processes`` executor would each start their own, which costs
seconds and records their task runs elsewhere. So recipeflow starts that one temporary server
itself and exports its URL, which child processes inherit.

It runs the same app with the same settings as Prefect's own ``SubprocessASGIServer``, but is
launched without importing Prefect's server code here (2-3 s), so that its start-up (4 s and
more) overlaps this process's own imports: call :func:`start_embedded_server` first, import
and plan, then enter :func:`prefect_api`, which waits until the server answers.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import IO, Iterator

from recipeflow.orchestration import parent_watch

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

    cleared_ui_url = False  # PREFECT_UI_URL was blanked for this server's lifetime

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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            status = self.process.poll()
            if status is not None:
                self._errors.seek(0)
                detail = self._errors.read().decode("utf-8", "replace")[-4000:]
                raise RuntimeError(f"Prefect's embedded server exited with status {status}:\n{detail}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Prefect's embedded server did not answer within {timeout:.0f} s")

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


_started: list[EmbeddedServer] = []  # the embedded servers of this process still running


def no_lasting_server() -> bool:
    """True when this process's runs report to no server of their own: none is configured, or
    the one ``PREFECT_API_URL`` names is an embedded server that ends with the run."""
    url = os.environ.get("PREFECT_API_URL")
    return not url or any(url == server.api_url for server in _started)


def start_embedded_server() -> EmbeddedServer | None:
    """Start the embedded server now, without waiting for it, and export its URL (before
    Prefect is imported, so every part of Prefect sees it); None when ``PREFECT_API_URL``
    already names a server."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    server = EmbeddedServer()
    _started.append(server)
    os.environ["PREFECT_API_URL"] = server.api_url
    # Prefect would log "View at <URL>" for a UI that is gone when the run ends: no link (the
    # command line says how to see runs later, see EMBEDDED_NOTE).
    if "PREFECT_UI_URL" not in os.environ:
        os.environ["PREFECT_UI_URL"] = ""
        server.cleared_ui_url = True
    _refresh_prefect_settings()
    return server


@contextlib.contextmanager
def prefect_api(server: EmbeddedServer | None = None) -> Iterator[str]:
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


def stop_embedded_server(server: EmbeddedServer | None) -> None:
    """Stop a server :func:`start_embedded_server` started (None: nothing to do), and take
    its URL back out of the environment."""
    if server is None:
        return
    if "prefect.logging.handlers" in sys.modules:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # send buffered logs while the server is still up
    if os.environ.get("PREFECT_API_URL") == server.api_url:
        os.environ.pop("PREFECT_API_URL")
        if server.cleared_ui_url:
            os.environ.pop("PREFECT_UI_URL", None)
        _refresh_prefect_settings()
    if server in _started:
        _started.remove(server)
    server.stop()

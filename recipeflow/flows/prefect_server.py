"""Prefect's embedded mode, shared with worker processes.

With no ``PREFECT_API_URL``, Prefect starts a temporary server in the process that runs the
flow. Worker processes of the ``processes`` executor would each start their own, which costs
seconds and records their task runs elsewhere. So recipeflow starts that one temporary server
itself and exports its URL, which child processes inherit.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def prefect_api() -> Iterator[str | None]:
    """Yield the API URL in use: the configured server, or a temporary embedded one."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start(timeout=120)  # a loaded machine can take a while to start it
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # send buffered logs while the server is still up
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()

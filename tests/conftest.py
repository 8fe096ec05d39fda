"""Test set-up: an isolated Prefect home, no analytics, and helpers shared by the tests."""

from __future__ import annotations

import os
import sys
import tempfile

# Before Prefect is imported anywhere: a private Prefect home (its SQLite database) per session.
_PREFECT_HOME = tempfile.mkdtemp(prefix="recipeflow-prefect-home-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
# A test's runs get a server that ends with them (tests stop what they start); the kept local
# server that users' runs share is tested on its own (tests/orchestration/test_kept_server.py).
os.environ["RECIPEFLOW_SERVER_IDLE_SECONDS"] = "0"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_WARC = REPO / "recipes" / "samples" / "debian-handbook-sample.warc.gz"
# Real text for tests, shipped trimmed in tests/data (see its NOTICE): a clone has no ../shared.
CORPORA = REPO / "tests" / "data"


def pytest_sessionfinish(session, exitstatus):
    """Stop Prefect's own temporary server, where a test made Prefect start one (a flow or
    client with no API URL set), while pytest's output is still open: Prefect stops it at exit
    otherwise, and its "Stopping temporary server" line meets a closed stream ("--- Logging
    error ---" after the summary)."""
    server = sys.modules.get("prefect.server.api.server")
    if server is not None:
        for temporary in list(server.SubprocessASGIServer._instances.values()):
            temporary.stop()


@pytest.fixture(scope="session")
def prefect_api():
    """One embedded Prefect server for the whole test session (as `recipeflow run` uses)."""
    from recipeflow.orchestration.prefect_server import prefect_api as embedded

    with embedded() as url:
        yield url


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One `prefect server start` (a separate process, as a team runs it) for the tests that
    need a real server: deployments, work pools, the UI's API. Started once: 15 s each time."""
    from tests.servers import prefect_server as start_prefect_server

    with start_prefect_server(tmp_path_factory.mktemp("prefect-server-home")) as api:
        yield api

"""A real Prefect server on PostgreSQL, as big runs should use: PostgreSQL from Debian's
package (`apt-get install postgresql`) started by the test in a temporary folder on a free port
and stopped by its PID, `prefect server start` on it, and a 5,000-shard recipe run against it.
The run's task runs land in PostgreSQL, and batching keeps them few."""

from __future__ import annotations

import glob
import gzip
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pyarrow.parquet as pq
import pytest

from tests.s3 import _free_port
from tests.servers import post, prefect_server

REPO = Path(__file__).resolve().parents[2]
DOCS = 5_000


def _postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (initdb, postgres), newest version."""
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if os.access(os.path.join(found, "initdb"), os.X_OK):
            return Path(found)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_user() -> dict:
    """PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user."""
    if os.getuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
    return {"user": user.pw_uid, "group": user.pw_gid}


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server on a free port of 127.0.0.1, its data in a new temporary folder
    (its own: pytest's are private to root, and PostgreSQL will not run as root); yields the
    SQLAlchemy URL of an empty database `prefect` (trust auth, local only)."""
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL's binaries (initdb, postgres) are not installed: apt-get install -y postgresql")
    who = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="recipeflow-postgres-"))
    if who:
        os.chown(folder, who["user"], who["group"])
    data = folder / "data"
    made = subprocess.run(
        [str(binaries / "initdb"), "-D", str(data), "-U", "recipeflow", "--auth=trust", "-E", "UTF8", "--no-sync"],
        capture_output=True, text=True, **who,
    )
    if made.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{made.stdout[-2000:]}{made.stderr[-2000:]}")
    port = _free_port()
    log = open(folder / "postgres.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(folder),
         "-c", "fsync=off", "-c", "max_connections=100"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **who,
    )
    try:
        deadline = time.time() + 60
        while subprocess.run([str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                             capture_output=True).returncode != 0:
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"PostgreSQL did not start:\n{(folder / 'postgres.log').read_text()[-3000:]}")
            time.sleep(0.2)
        subprocess.run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "recipeflow", "prefect"],
                       check=True, capture_output=True)
        yield f"postgresql+asyncpg://recipeflow@127.0.0.1:{port}/prefect"
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown: end sessions, stop
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _psql(url: str, sql: str) -> str:
    binaries = _postgres_bin()
    assert binaries is not None
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    return subprocess.run([str(binaries / "psql"), plain, "-At", "-c", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_5000_shard_run_on_a_prefect_server_backed_by_postgresql(tmp_path, monkeypatch):
    with postgres() as url:
        monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", url)
        with prefect_server(tmp_path) as api:
            # Documents of our own: 5,000 short ones, a fifth of them too short for the filter.
            inputs = tmp_path / "docs.jsonl.gz"
            with gzip.open(inputs, "wt") as f:
                for i in range(DOCS):
                    words = 3 if i % 5 == 0 else 12
                    f.write(json.dumps({"id": f"d{i:05d}", "text": " ".join(f"word{i}-{w}" for w in range(words))}) + "\n")
            recipe = tmp_path / "recipe.yaml"
            recipe.write_text(
                f"name: postgres-5000-shards\n"
                f"inputs:\n  docs:\n    path: {inputs}\n    format: jsonl\n"
                f"process:\n  - words_num_filter:\n      min_num: 5\n"
                f"output:\n  path: {tmp_path / 'out'}\n  format: parquet\n"
                f"run:\n  executor: processes\n  workers: 2\n  shard_size: 1\n"
            )
            env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(REPO)}
            env.pop("PREFECT_API_DATABASE_CONNECTION_URL")  # the client needs only the API
            done = subprocess.run([sys.executable, "-m", "recipeflow.cli", "run", str(recipe)], env=env,
                                  capture_output=True, text=True, timeout=1500, cwd=tmp_path)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

            runs = post(api, "/flow_runs/filter", {"flow_runs": {"name": {"like_": "postgres-5000-shards-"}}})  # <recipe>-<version>
            assert [r["state_type"] for r in runs] == ["COMPLETED"]
            # 5,000 shards, yet a handful of task runs: one scan, at most 4 x workers stage
            # batches, one commit.
            task_count = httpx.post(f"{api}/task_runs/count", json={"flow_runs": {"id": {"any_": [runs[0]["id"]]}}},
                                    timeout=30).json()
            assert 3 <= task_count <= 1 + 8 + 1, task_count
            # They are stored in PostgreSQL, not in a SQLite file of the Prefect home.
            assert int(_psql(url, "select count(*) from task_run")) == task_count
            assert not list(tmp_path.glob("*.db"))

    data = sorted((tmp_path / "out").rglob("data/*.parquet"))
    assert data, list((tmp_path / "out").rglob("*"))[:20]
    ids = [i for p in data for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()]
    assert len(ids) == DOCS - DOCS // 5 and ids == sorted(ids)

"""PostgreSQL from Debian's package (`apt-get install postgresql`), started in a temporary
folder on a free port of 127.0.0.1 and stopped by its PID: for the test and the benchmark of a
Prefect server on PostgreSQL (``tests/orchestration/test_postgres_server.py``,
``bench/shards_benchmark.py --postgres``)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.s3 import _free_port


def _postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (initdb, postgres), newest version."""
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if os.access(os.path.join(found, "initdb"), os.X_OK):
            return Path(found)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable() -> str | None:
    """Why PostgreSQL cannot be started here (None: it can)."""
    if _postgres_bin() is None:
        return "PostgreSQL's binaries (initdb, postgres) are not installed: apt-get install -y postgresql"
    if os.getuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run PostgreSQL as"
    return None


def _as_user() -> dict:
    """PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user."""
    if os.getuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid}


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server on a free port of 127.0.0.1, its data in a new temporary folder
    (its own: pytest's are private to root, and PostgreSQL will not run as root); yields the
    SQLAlchemy URL of an empty database `prefect` (trust auth, local only)."""
    why = unavailable()
    if why:
        raise RuntimeError(why)
    binaries = _postgres_bin()
    assert binaries is not None
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


def psql(url: str, sql: str) -> str:
    binaries = _postgres_bin()
    assert binaries is not None
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    return subprocess.run([str(binaries / "psql"), plain, "-At", "-c", sql], check=True, capture_output=True,
                          text=True).stdout.strip()

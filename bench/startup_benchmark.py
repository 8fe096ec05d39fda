"""Start-up of a run: how long `recipeflow run` takes before operator work starts, on a warm
Prefect home (its database created by a first run, as after a user's first run).

A one-shard recipe (20 documents, ``text_length_filter``, ``processes``, 2 workers) runs
``--runs`` times after a warm-up run; for each run: the time from the command's start to the
first stage result written (the earliest file under ``<output>/cache/packs``, the batch's shared
files, written when the first shard's operator work is done: a 20-document shard takes
milliseconds), and the whole
run's wall time. Also the import time of ``recipeflow.cli`` and of ``prefect`` alone.

    python bench/startup_benchmark.py --runs 3 [--executor threads] [--own-server | --server]

By default the runs report to the Prefect home's kept local server, as users' runs do: the
warm-up run starts it, the measured runs find it running (the benchmark stops it at the end).
``--own-server``: each run starts a server of its own that ends with it
(``RECIPEFLOW_SERVER_IDLE_SECONDS=0``; whose import alone takes seconds). ``--server``: the
runs report to a running ``prefect server start`` (``PREFECT_API_URL``), as a team's runs do.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, build_documents, write_jsonl  # noqa: E402


def first_stage_file(out: Path) -> float | None:
    times = [p.stat().st_mtime for p in (out / "cache" / "packs").rglob("*") if p.is_file()]
    return min(times) if times else None


def timed_import(module: str, env: dict) -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", f"import {module}"], env=env, check=True)
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--executor", default="processes", choices=("processes", "threads"))
    parser.add_argument("--server", action="store_true", help="report to a running Prefect server")
    parser.add_argument("--own-server", action="store_true", help="each run starts a server that ends with it")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recipeflow-startup-"))
    try:
        with contextlib.ExitStack() as stack:
            env = {**os.environ, "PREFECT_HOME": str(work / "prefect-home")}
            env.pop("PREFECT_API_URL", None)
            env["RECIPEFLOW_SERVER_IDLE_SECONDS"] = "0" if args.own_server or args.server else "600"
            stack.callback(subprocess.run, [sys.executable, "-m", "recipeflow.cli", "server", "stop", "--force"],
                           env=env, cwd=REPO, capture_output=True)
            if args.server:
                from tests.servers import prefect_server

                (work / "server-home").mkdir()
                env["PREFECT_API_URL"] = stack.enter_context(prefect_server(work / "server-home"))
            _measure(args, work, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(args: argparse.Namespace, work: Path, env: dict) -> None:
    write_jsonl(build_documents(20)[:20], work / "in" / "docs.jsonl")
    recipe = work / "r.yaml"
    print(f"load average before: {os.getloadavg()}")
    to_work, totals = [], []
    for n in range(args.runs + 1):
        out = work / f"out-{n}"
        recipe.write_text(
            f"name: startup\ninputs:\n  docs:\n    path: {work / 'in' / 'docs.jsonl'}\n    format: jsonl\n"
            f"process:\n  - text_length_filter:\n      min_length: 10\n"
            f"output:\n  path: {out}\n  format: parquet\n"
            f"run:\n  executor: {args.executor}\n  workers: 2\n"
        )
        start = time.time()
        done = subprocess.run([sys.executable, "-m", "recipeflow.cli", "run", str(recipe)], env=env, cwd=REPO,
                              capture_output=True, text=True)
        total = time.time() - start
        if done.returncode != 0:
            raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
        first = first_stage_file(out)
        label = "warm-up (creates the Prefect home)" if n == 0 else f"run {n}"
        print(f"{label:<38} operator work after {first - start:6.2f} s; whole run {total:6.2f} s")
        if n:
            to_work.append(first - start)
            totals.append(total)
    imports = {m: timed_import(m, env) for m in ("recipeflow.cli", "prefect", "prefect.server.api.server")}
    print(f"median: operator work after {statistics.median(to_work):.2f} s; whole run {statistics.median(totals):.2f} s")
    print("import time in a fresh interpreter: " + ", ".join(f"{m} {s:.2f} s" for m, s in imports.items()))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

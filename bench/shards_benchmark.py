"""Orchestration cost of many shards: the same documents and one cheap filter, cut into few
shards and into thousands, in one run, so the ratio says what the shard count costs.

* Documents: ``--docs`` web-like documents cut from the shared corpora (``bench/common.py``),
  in 8 JSONL files.
* Recipe: ``text_length_filter`` (min 200 characters), Parquet output, ``processes``, 2 workers;
  with ``--barrier`` then ``exact_dedup`` (a barrier: signatures of every shard, one resolve,
  each shard's decision applied in a second stage).
* Runs, one after another on a fresh output, each ``--repeat`` times (default 2, taking turns;
  the fastest of each counts): ``--few`` shards (``shard_size`` = docs / few),
  ``--many`` shards (``shard_size`` = docs / many), each with the default batching (at most
  ``4 x workers`` Prefect tasks per stage, ``run.tasks_per_stage``); with ``--per-shard N`` also
  N shards run one Prefect task per shard (``tasks_per_stage`` = N: the behaviour before
  batching), to measure what a task costs.

Reported per run: wall time, CPU time of the process tree, peak resident memory of the whole
process tree and of the flow run's own process (the ``recipeflow`` process; workers are its
children), Prefect task runs, and the ratio of each run to the few-shard run. The machine's load
average is printed before and after: on a shared machine compare ratios, not seconds.

    python bench/shards_benchmark.py                               # 50,000 docs, 8 vs 5,000 shards
    python bench/shards_benchmark.py --docs 5000 --many 500        # a quick look
    python bench/shards_benchmark.py --per-shard 400               # + 400 shards, a task each
    python bench/shards_benchmark.py --postgres                    # against `prefect server` on PostgreSQL
    python bench/shards_benchmark.py --barrier                     # + exact_dedup

With ``--postgres`` the runs report to a ``prefect server`` on PostgreSQL (Debian's package,
started in a temporary folder and stopped by the benchmark, ``tests/postgres.py``), as the
README advises for big runs; also reported per run: the task runs it stored and the CPU time the
server and PostgreSQL spent (their work should not grow with the shard count).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import textwrap
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, build_documents, mib, run_timed, write_jsonl  # noqa: E402

FILES = 8


@dataclass
class Measured:
    label: str
    shards: int
    seconds: float
    cpu_seconds: float
    peak_tree: int
    peak_flow: int
    tasks: str
    returncode: int
    output: str
    server_cpu_seconds: float | None = None  # --postgres: the server's and PostgreSQL's
    stored_task_runs: int | None = None  # --postgres: task runs the run added to PostgreSQL


def run_measured(label: str, shards: int, command: list[str], cwd: Path, env: dict | None = None) -> Measured:
    """Run ``command``: wall time, peak RSS of its tree and of its own process, CPU seconds."""
    timed = run_timed(command, cwd=cwd, env=env)
    tasks = next((line.strip() for line in timed.output.splitlines() if "tasks:" in line), "?")
    return Measured(label, shards, timed.seconds, timed.cpu_seconds, timed.peak_rss_bytes,
                    timed.peak_root_rss_bytes, tasks, timed.returncode, timed.output)


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU time so far of these processes and all their descendants."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def postgres_server(stack: ExitStack, work: Path) -> tuple[dict, list[int], str]:
    """PostgreSQL and a `prefect server` on it (stopped when ``stack`` closes): the environment
    that points runs at it, the PIDs whose CPU is the server side, the database URL."""
    from tests.postgres import postgres
    from tests.postgres import unavailable as postgres_unavailable
    from tests.servers import prefect_server

    if why := postgres_unavailable():
        raise SystemExit(f"--postgres: {why}")
    url = stack.enter_context(postgres())
    os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = url  # the server's, not the runs'
    home = work / "prefect-server"
    home.mkdir()
    api = stack.enter_context(prefect_server(home))
    del os.environ["PREFECT_API_DATABASE_CONNECTION_URL"]
    api_port = api.rsplit(":", 1)[1].split("/")[0]
    database_port = url.rsplit(":", 1)[1].split("/")[0]
    # The server's and PostgreSQL's main processes, by their ports (their children count too).
    roots = [p.pid for p in psutil.process_iter(["cmdline"]) if (cmd := p.info["cmdline"] or [])
             and (("server" in cmd and "start" in cmd and api_port in cmd) or ("-p" in cmd and database_port in cmd))]
    env = {**os.environ, "PREFECT_API_URL": api}
    return env, roots, url


def recipe_text(inputs: Path, out: Path, barrier: bool = False) -> str:
    dedup = "\n          - exact_dedup: {}" if barrier else ""
    return textwrap.dedent(
        f"""\
        name: shards-benchmark
        inputs:
          docs:
            path: {inputs}/*.jsonl
            format: jsonl
        process:
          - text_length_filter:
              min_length: 200{dedup}
        output:
          path: {out}
          format: parquet
        run:
          executor: processes
          workers: 2
        """
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--few", type=int, default=8, help="shards of the reference run")
    parser.add_argument("--many", type=int, default=5_000, help="shards of the compared run")
    parser.add_argument("--per-shard", type=int, default=0, help="also N shards at one Prefect task each")
    parser.add_argument("--tasks-per-stage", type=int, default=0, help="run.tasks_per_stage of the batched runs")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--postgres", action="store_true", help="report to a prefect server on PostgreSQL")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each plan, taking turns; the fastest counts")
    parser.add_argument("--barrier", action="store_true",
                        help="exact_dedup after the filter: signatures per shard, a resolve, its decisions applied")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recipeflow-shards-"))
    stack = ExitStack()
    try:
        env, server_pids, database_url = postgres_server(stack, work) if args.postgres else (None, [], "")
        docs = build_documents(args.docs)[: args.docs]
        inputs = work / "inputs"
        per_file = -(-len(docs) // FILES)
        for i in range(FILES):
            write_jsonl(docs[i * per_file : (i + 1) * per_file], inputs / f"part-{i:02d}.jsonl")
        # This interpreter's recipeflow (the checkout it imports), not whichever is on PATH.
        recipeflow = [sys.executable, "-m", "recipeflow.cli"]
        print(f"{len(docs):,} documents in {FILES} JSONL files; load average before: {os.getloadavg()}")

        plans = [("few shards", args.few, args.tasks_per_stage), ("many shards", args.many, args.tasks_per_stage)]
        if args.per_shard:
            plans.append(("a task per shard", args.per_shard, args.per_shard))
        results: list[Measured] = []
        for n, (label, shards, tasks_per_stage) in enumerate(plans):
            recipe = work / f"recipe-{n}.yaml"
            recipe.write_text(recipe_text(inputs, work / f"out-{n}", args.barrier))
        # Each run --repeat times, the plans taking turns on a fresh output; the fastest of each
        # counts (a run's wall time on a shared machine only ever grows by what else runs).
        for attempt in range(args.repeat):
            for n, (label, shards, tasks_per_stage) in enumerate(plans):
                shutil.rmtree(work / f"out-{n}", ignore_errors=True)
                shard_size = -(-len(docs) // shards)
                command = recipeflow + ["run", str(work / f"recipe-{n}.yaml"), "--set", f"run.shard_size={shard_size}"]
                if tasks_per_stage:
                    command += ["--set", f"run.tasks_per_stage={tasks_per_stage}"]
                server_before = tree_cpu_seconds(server_pids)
                stored_before = _stored_task_runs(database_url)
                measured = run_measured(label, shards, command, REPO, env)
                if args.postgres:
                    measured.server_cpu_seconds = tree_cpu_seconds(server_pids) - server_before
                    measured.stored_task_runs = _stored_task_runs(database_url) - stored_before
                if measured.returncode != 0:
                    print(measured.output[-4000:])
                    raise SystemExit(f"{label}: recipeflow run failed ({measured.returncode})")
                print(f"  {label} ({shards:,} shards), try {attempt + 1}: {measured.seconds:.1f} s", flush=True)
                if attempt == 0:
                    results.append(measured)
                elif measured.seconds < results[n].seconds:
                    results[n] = measured
        base = results[0]
        print(f"\n{'run':<18}{'shards':>8}{'wall s':>9}{'ratio':>7}{'cpu s':>9}{'peak all':>11}{'peak flow':>11}  tasks")
        for m in results:
            print(
                f"{m.label:<18}{m.shards:>8,}{m.seconds:>9.1f}{m.seconds / base.seconds:>7.2f}{m.cpu_seconds:>9.1f}"
                f"{mib(m.peak_tree):>11}{mib(m.peak_flow):>11}  {m.tasks}"
            )
            if m.server_cpu_seconds is not None:
                print(f"{'':<18}server + PostgreSQL CPU {m.server_cpu_seconds:.1f} s, "
                      f"task runs stored in PostgreSQL: {m.stored_task_runs}")
        many = results[1]
        print(
            f"\nwall time {many.shards:,} shards / {base.shards:,} shards: {many.seconds / base.seconds:.3f}"
            f" (goal <= 1.10); flow-run process peak: {mib(many.peak_flow)} vs {mib(base.peak_flow)}"
        )
        if args.per_shard:
            per = results[2]
            print(f"orchestration per extra task (a task per shard): "
                  f"{(per.seconds - base.seconds) / max(1, per.shards - base.shards):.3f} s")
        print(f"load average after: {os.getloadavg()}")
    finally:
        stack.close()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _stored_task_runs(database_url: str) -> int:
    if not database_url:
        return 0
    from tests.postgres import psql

    return int(psql(database_url, "select count(*) from task_run"))


if __name__ == "__main__":
    main()

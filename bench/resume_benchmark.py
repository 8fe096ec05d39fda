"""Benchmark: what a re-run and a resume cost on S3, against the cold run.

FineWeb's chain (bench/fineweb_benchmark.py) on web-like documents, inputs and output on a
real S3 endpoint on 127.0.0.1 (moto's server, as the tests use), ``recipeflow run`` as a user
runs it (processes executor, embedded Prefect server, one Prefect home for all runs):

* cold: a new dataset root, twice (two roots): their mean is the reference, their spread
  shows how much one run's time varies;
* unchanged: the same recipe again (nothing to do: start-up, scans, cache checks);
* resumed after a kill at each fraction of the cold time (``--kill-at``): the run's process is
  SIGKILLed (its workers and server die with it), then the recipe is run again to its end.

For each resume it prints the time, its ratio to the cold run, and the bound it should stay
under: start-up plus the work left, ``unchanged + commit + (1 - done) × (cold - unchanged -
commit)``, where ``done`` is the share of documents whose shard result the killed run had stored and
``commit`` the cold run's commit (from its log: the last task's end to the commit's end; a
killed run never committed, so its resume always does the whole commit). Every resumed version's data
files must have the cold version's bytes (sha256).

    python bench/resume_benchmark.py [--docs 50000] [--kill-at 0.3 0.6 0.9]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, build_documents, run_timed, write_jsonl  # noqa: E402
from bench.fineweb_benchmark import CHAIN  # noqa: E402

BUCKET = "resume-bench"


def _recipe(folder: Path, root: str, workers: int, shard_size: int) -> Path:
    import yaml

    path = folder / f"{root.replace('/', '-')}.yaml"
    path.write_text(yaml.safe_dump({
        "name": "resume-benchmark",
        "inputs": {"docs": {"path": f"s3://{BUCKET}/inputs/*.jsonl", "format": "jsonl"}},
        "process": CHAIN,
        "output": {"path": f"s3://{BUCKET}/{root}", "format": "parquet"},
        "run": {"executor": "processes", "workers": workers, "shard_size": shard_size},
    }, sort_keys=False))
    return path


def _command(recipe: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "recipeflow"), "run", str(recipe), "--no-progress"]


def _run(recipe: Path, env: dict) -> tuple[float, str]:
    timed = run_timed(_command(recipe), env=env, cwd=REPO)
    if timed.returncode != 0:
        raise SystemExit(f"recipeflow run failed:\n{timed.output[-4000:]}")
    return timed.seconds, timed.output


def _commit_seconds(log: str) -> float:
    """From a run's Prefect log: the last task's end to the commit task's end."""
    from datetime import datetime

    ends = []
    for line in log.splitlines():
        match = re.match(r"(\d\d:\d\d:\d\d\.\d+) \| INFO +\| Task run '(.*)' - Finished", line)
        if match:
            ends.append((datetime.strptime(match.group(1), "%H:%M:%S.%f"), match.group(2)))
    commits = [at for at, name in ends if name.startswith("commit ")]
    others = [at for at, name in ends if not name.startswith("commit ") and commits and at <= commits[-1]]
    if not commits or not others:
        return 0.0
    return (commits[-1] - max(others)).total_seconds()


def _kill_after(recipe: Path, env: dict, seconds: float) -> bool:
    """Start a run and SIGKILL its process after ``seconds`` (its children die with it);
    False if it ended first (a run can be faster than the cold ones)."""
    process = subprocess.Popen(_command(recipe), env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    if process.poll() is not None:
        return False
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(3)  # parent_watch: the workers and the server notice and end
    return True


def _stored_results(root: str) -> tuple[int, int]:
    """Stage results (one per stage and shard; signatures' are not counted) stored under a dataset root's cache, and the
    documents they cover (kept, rejected and unreadable rows): shards differ in size."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    # A batch's shards' results are in its packs' result files (engine.stored_results).
    packs = [json.loads(fs.cat(p)) for p in fs.glob(f"{BUCKET}/{root}/cache/packs/*/result.json")]
    results = [r for pack in packs for r in pack.get("results", {}).values() if "kept_rows" in r]
    return len(results), sum(r["kept_rows"] + r["rejected_rows"] + r["unreadable_rows"] for r in results)


def _data_digests(root: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem()
    [manifest] = [json.loads(fs.cat(p)) for p in fs.glob(f"{BUCKET}/{root}/versions/*/manifest.json")][-1:]
    return [f["sha256"] for f in manifest["files"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=2500)
    parser.add_argument("--kill-at", type=float, nargs="+", default=[0.3, 0.6, 0.9],
                        help="fractions of the cold run's time at which a run is killed")
    args = parser.parse_args()

    import logging

    from tests.s3 import s3_endpoint

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request

    docs = build_documents(args.docs)
    with tempfile.TemporaryDirectory(prefix="recipeflow-resume-") as tmp, s3_endpoint(BUCKET):
        workdir = Path(tmp)
        import s3fs

        fs = s3fs.S3FileSystem()
        per_file = -(-len(docs) // args.files)
        for i in range(args.files):
            local = workdir / f"part-{i:03d}.jsonl"
            write_jsonl(({"id": d["id"], "text": d["text"]} for d in docs[i * per_file:(i + 1) * per_file]), local)
            fs.put(str(local), f"{BUCKET}/inputs/{local.name}")
        env = dict(os.environ, PREFECT_HOME=str(workdir / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        env.pop("PREFECT_API_URL", None)

        _run(_recipe(workdir, "warmup", args.workers, args.shard_size), env)  # Prefect home, imports
        cold_recipe = _recipe(workdir, "cold", args.workers, args.shard_size)
        cold_a, cold_log = _run(cold_recipe, env)
        cold_b, _ = _run(_recipe(workdir, "cold-again", args.workers, args.shard_size), env)
        cold = (cold_a + cold_b) / 2
        commit = _commit_seconds(cold_log)
        unchanged, _ = _run(cold_recipe, env)
        expected = _data_digests("cold")
        print(f"{len(docs):,} documents, {args.files} files on S3 (moto), {args.workers} workers, "
              f"shards of {args.shard_size}")
        print(f"cold                {cold:7.1f} s   (mean of {cold_a:.1f} and {cold_b:.1f} s: one run varies by "
              f"{abs(cold_a - cold_b) / cold:.0%}; its commit {commit:.1f} s)")
        print(f"unchanged re-run    {unchanged:7.1f} s   {unchanged / cold:.2f} of cold")
        for fraction in args.kill_at:
            root = f"killed-{int(fraction * 100)}"
            recipe = _recipe(workdir, root, args.workers, args.shard_size)
            if not _kill_after(recipe, env, fraction * cold):
                print(f"killed at {fraction:.0%} of cold: the run had already ended")
                continue
            stored, stored_docs = _stored_results(root)
            resumed, _ = _run(recipe, env)
            all_results, all_docs = _stored_results("cold")  # stages × shards of a whole run
            done = stored_docs / all_docs if all_docs else 0.0
            bound = unchanged + commit + (1 - done) * (cold - unchanged - commit)
            same = _data_digests(root) == expected
            print(f"killed at {fraction:.0%} of cold ({stored}/{all_results} shard results, {done:.0%} of "
                  f"documents, stored): resumed in "
                  f"{resumed:6.1f} s = {resumed / cold:.2f} of cold; work left + start-up {bound:6.1f} s "
                  f"({resumed / bound:.2f} of it); data bytes as cold: {same}")


if __name__ == "__main__":
    main()

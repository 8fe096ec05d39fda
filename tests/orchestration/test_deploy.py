"""All real: a `prefect server` and a process worker on 127.0.0.1, `recipeflow deploy` of a
recipe reading from and writing to S3 (moto's server), the schedule's runs, refreshes.

The schedule's next run is made due now (rather than waiting an hour): the run the worker
executes is the one the server's scheduler created from the deployment's schedule.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import fsspec
import httpx
import pytest
import yaml

from recipeflow.datasets import versions
from tests.conftest import REPO
from tests.s3 import s3_endpoint
from tests.servers import (
    post,
    process_worker,
    stop_process_group,
    task_runs,
    trigger_next_scheduled_run,
    wait_for_flow_run,
)

BUCKET = "recipeflow-deploy"
SAMPLE_JSONL = REPO / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"


def sample_docs() -> list[dict]:
    with gzip.open(SAMPLE_JSONL, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def jsonl(docs: list[dict]) -> bytes:
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")


def run_cli(*args: str, api: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "recipeflow.cli", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def test_deploy_schedule_and_refresh_on_s3(tmp_path, prefect_server):
    api = prefect_server
    docs = sample_docs()
    root = f"s3://{BUCKET}/corpus"
    recipe = {
        "name": "nightly-corpus",
        "inputs": {"crawl": {"path": f"s3://{BUCKET}/crawl/*.jsonl", "format": "jsonl"}},
        "process": [
            {"normalize_whitespace": {}},
            {"text_length_filter": {"min_length": 200}},
            {"exact_dedup": {}},
        ],
        "output": {"path": root, "keep_rejected": True, "keep_last": 1},
        "run": {"executor": "threads", "workers": 2, "shard_size": 50},
    }
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))

    with s3_endpoint(BUCKET):
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.pipe(f"{BUCKET}/crawl/day1.jsonl", jsonl(docs[:100]))
        fs.pipe(f"{BUCKET}/crawl/day2.jsonl", jsonl(docs[100:180]))
        worker_home = tmp_path / "worker"
        # Deployed before the worker starts: a starting worker creates its pool when missing.
        out = run_cli("deploy", str(path), "--name", "nightly", "--interval", "3600", "--pool", "cpu-test",
                      api=api, home=tmp_path / "cli").stdout
        assert "created work pool 'cpu-test'" in out and "every 3600 seconds" in out
        with process_worker(api, "cpu-test", "cpu-worker", worker_home):
            deployment = httpx.get(f"{api}/deployments/name/recipeflow-deployment/nightly").json()
            [schedule] = deployment["schedules"]
            assert schedule["schedule"]["interval"] == 3600 and deployment["work_pool_name"] == "cpu-test"
            assert deployment["global_concurrency_limit"]["limit"] == 1  # one refresh at a time
            logs = [worker_home / "worker-cpu-worker.log"]

            # 1. The schedule's first run commits the first version.
            first_run = trigger_next_scheduled_run(api, deployment["id"])
            wait_for_flow_run(api, first_run, logs=logs)
            [v1] = versions.list_versions(root)
            m1 = versions.read_manifest(root, v1["version"])
            assert m1["parent"] is None and len(m1["inputs"][0]["files"]) == 2

            # 2. A new crawl file lands (a copy of an old page among new ones): the next run
            # computes only its shards, and the new version's parent is the first.
            new_docs = docs[180:260] + [docs[5]]
            fs.pipe(f"{BUCKET}/crawl/day3.jsonl", jsonl(new_docs))
            second_run = trigger_next_scheduled_run(api, deployment["id"])
            wait_for_flow_run(api, second_run, logs=logs)
            [v2] = versions.list_versions(root)  # keep_last: 1 removed the first
            m2 = versions.read_manifest(root, v2["version"])
            assert m2["parent"] == v1["version"]
            # (listed with boto3: moto lists a deleted folder of a versioned bucket as a prefix)
            left = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"corpus/versions/{v1['version']}/")
            assert left["KeyCount"] == 0
            assert len(m2["inputs"][0]["files"]) == 3

            states = {t["name"]: t["state_name"] for t in task_runs(api, m2["run"]["flow_run_id"])}
            computed = {n for n, s in states.items() if s == "Completed" and not n.startswith("commit")}
            cached = {n for n, s in states.items() if s == "Cached"}
            # scan + 2 shards x (stage, signatures, apply stage) of the new file, and the one
            # global resolve of the barrier; every task of the old files is Cached.
            assert computed == {n for n in states if "day3" in n} | {"main: exact_dedup resolve · 6 signature files"}, states
            assert len(computed) == 1 + 2 * 3 + 1, states
            assert cached and not any("day3" in n for n in cached), states
            assert len(cached) == 2 + 4 * 3, states  # scans of day1, day2; their 4 shards
            assert m2["run"]["tasks"]["computed"] == 2 * 3 + 1
            dedup = next(o for o in m2["operators"] if o["operator"] == "exact_dedup")
            assert dedup["rejected"] >= 1  # the copied page

            # 3. Nothing changed: the next run commits nothing and says so.
            third_run = trigger_next_scheduled_run(api, deployment["id"])
            wait_for_flow_run(api, third_run, logs=logs)
            assert [v["version"] for v in versions.list_versions(root)] == [v2["version"]]
            [summary] = post(api, "/artifacts/latest/filter", {"artifacts": {"key": {"any_": ["nightly-corpus-summary"]}}})
            assert "nothing changed" in summary["data"] and v2["version"] in summary["data"]

        # Redeploying updates the deployment: another schedule replaces the first.
        run_cli("deploy", str(path), "--name", "nightly", "--cron", "0 2 * * *", "--pool", "cpu-test",
                api=api, home=tmp_path / "cli")
        updated = httpx.get(f"{api}/deployments/name/recipeflow-deployment/nightly").json()
        assert [s["schedule"].get("cron") for s in updated["schedules"]] == ["0 2 * * *"]
        assert updated["id"] == deployment["id"]


def test_deploy_errors_name_what_to_do(tmp_path, prefect_server):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "name": "r", "inputs": {"a": {"path": str(tmp_path / "*.jsonl")}},
        "process": [], "output": {"path": str(tmp_path / "out")},
    }))
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path / "home")}
    bad = subprocess.run(
        [sys.executable, "-m", "recipeflow.cli", "deploy", str(path), "--name", "x", "--cron", "every night"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 1 and "--cron 'every night': not a valid cron expression" in bad.stderr
    env.pop("PREFECT_API_URL")
    no_server = subprocess.run(
        [sys.executable, "-m", "recipeflow.cli", "deploy", str(path), "--name", "x"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert no_server.returncode == 1 and "PREFECT_API_URL" in no_server.stderr


def test_gpu_stage_runs_as_a_flow_run_on_the_gpu_pool(tmp_path, prefect_server):
    """Two local process pools: the recipe's flow run on `cpu`, its GPU stage (the real
    `rephrase` operator, SmolLM2-135M on the CPU) as a flow run on `gpu`, bounded by the tag
    concurrency limit; the stage after it runs on the cpu pool again."""
    from recipeflow.operators.models.llm_models import BUNDLED_SMOLLM2

    api = prefect_server
    data = tmp_path / "docs.jsonl"
    texts = [
        "Debian is a free operating system. It uses the apt tool to install and update software packages.",
        "The kernel manages memory and processes. Drivers let it talk to disks and network cards.",
        "A firewall filters network traffic. Rules decide which packets may enter or leave the machine.",
    ]
    data.write_text("".join(json.dumps({"id": f"doc{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    recipe = {
        "name": "two-pools",
        "inputs": {"docs": {"path": str(data)}},
        "process": [
            {"text_length_filter": {"min_length": 20}},
            {"rephrase": {"model": BUNDLED_SMOLLM2, "style": "qa", "max_tokens": 24, "min_output_words": 3}},
            {"normalize_whitespace": {}},
        ],
        "output": {"path": str(tmp_path / "dataset")},
        "run": {"executor": "threads", "workers": 2, "shard_size": 2, "pools": {"cpu": "cpu-2"}},
    }
    path = tmp_path / "two-pools.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    out = run_cli("deploy", str(path), "--name", "two-pools", "--set", "run.pools.gpu=gpu-2",
                  "--set", "run.gpu_concurrency=1", api=api, home=tmp_path / "cli").stdout
    assert "on work pool 'cpu-2'" in out and "recipeflow-stage/gpu-2" in out, out
    assert httpx.get(f"{api}/concurrency_limits/tag/recipeflow-gpu").json()["concurrency_limit"] == 1
    deployment = httpx.get(f"{api}/deployments/name/recipeflow-deployment/two-pools").json()

    cpu_home, gpu_home = tmp_path / "cpu-worker", tmp_path / "gpu-worker"
    logs = [cpu_home / "worker-cpu-worker.log", gpu_home / "worker-gpu-worker.log"]
    with process_worker(api, "cpu-2", "cpu-worker", cpu_home), process_worker(api, "gpu-2", "gpu-worker", gpu_home):
        run = post(api, f"/deployments/{deployment['id']}/create_flow_run", {})
        wait_for_flow_run(api, run["id"], timeout=480, logs=logs)

    [manifest] = [versions.read_manifest(str(tmp_path / "dataset"), v["version"])
                  for v in versions.list_versions(str(tmp_path / "dataset"))]
    step = next(o for o in manifest["operators"] if o["operator"] == "rephrase")
    assert step["docs_in"] == 3 and step["docs_added"] == 3

    # Which pool and which worker ran each flow run.
    [stage_run] = post(api, "/flow_runs/filter", {"flows": {"name": {"any_": ["recipeflow-stage"]}}})
    assert stage_run["work_pool_name"] == "gpu-2" and stage_run["state_type"] == "COMPLETED"
    assert run["work_pool_name"] == "cpu-2"
    submitted = post(api, "/events/filter", {
        "filter": {"event": {"name": ["prefect.worker.submitted-flow-run"]}}, "limit": 50,
    })["events"]
    by_run = {
        r["prefect.resource.id"].removeprefix("prefect.flow-run."): e["resource"]["prefect.resource.id"]
        for e in submitted for r in e["related"] if r["prefect.resource.id"].startswith("prefect.flow-run.")
    }
    assert by_run[run["id"]] == "prefect.worker.process.cpu-worker"
    assert by_run[stage_run["id"]] == "prefect.worker.process.gpu-worker"

    # The GPU stage's tasks ran in the stage's flow run, tagged, one at a time (limit 1); the
    # stages before and after it ran in the recipe's flow run on the cpu pool.
    gpu_tasks = [t for t in task_runs(api, stage_run["id"]) if t["name"].startswith("main: ")]
    assert len(gpu_tasks) == 2 and all("recipeflow-gpu" in t["tags"] for t in gpu_tasks)
    first, second = sorted(gpu_tasks, key=lambda t: t["start_time"])
    assert first["end_time"] <= second["start_time"], gpu_tasks
    recipe_tasks = {t["name"] for t in task_runs(api, manifest["run"]["flow_run_id"])}
    # Tasks are named by what they do: `<node>: <operators> · <input file> [rows a–b]`.
    assert {n.split(" · ")[0] for n in recipe_tasks if n.startswith("main:")} == {
        "main: text_length_filter", "main: normalize_whitespace"}


def test_serve_runs_the_schedule_in_process_with_its_own_server(tmp_path):
    """`recipeflow serve` with no PREFECT_API_URL: it starts a Prefect server and a runner; the
    schedule's run happens in its process tree, no worker involved."""
    data = tmp_path / "docs.jsonl"
    data.write_bytes(jsonl(sample_docs()[:40]))
    path = tmp_path / "served.yaml"
    path.write_text(yaml.safe_dump({
        "name": "served", "inputs": {"docs": {"path": str(data)}},
        "process": [{"normalize_whitespace": {}}, {"text_length_filter": {"min_length": 100}}],
        "output": {"path": str(tmp_path / "dataset")},
        "run": {"executor": "threads", "shard_size": 20},
    }))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recipeflow.cli", "serve", str(path), "--interval", "3600"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            api = wait_for_line(log, "started a Prefect server at ", proc).split(" at ", 1)[1].split(" ")[0] + "/api"
            wait_for_line(log, "serving recipeflow-deployment/served", proc)
            deadline = time.time() + 120  # the runner registers the deployment as it starts
            while (got := httpx.get(f"{api}/deployments/name/recipeflow-deployment/served")).status_code != 200:
                assert time.time() < deadline and proc.poll() is None, log.read_text()[-3000:]
                time.sleep(0.5)
            deployment = got.json()
            assert deployment["work_pool_name"] is None and deployment["schedules"]
            run_id = trigger_next_scheduled_run(api, deployment["id"])
            wait_for_flow_run(api, run_id, logs=[log])
            [version] = versions.list_versions(str(tmp_path / "dataset"))
            assert version["rows"] > 0
        finally:
            stop_process_group(proc)
    assert proc.returncode is not None


def wait_for_line(log: Path, text: str, proc: subprocess.Popen, timeout: float = 240) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in log.read_text().splitlines():
            if text in line:
                return line
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not printed in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def test_deploy_folder_pools_prefect_yaml_and_compose(tmp_path, prefect_server):
    """deploy/: the work-pool definitions are accepted by the server, `prefect deploy --all`
    creates every deployment of prefect.yaml (each recipe valid), the compose file has its services."""
    from recipeflow.recipe.loading import load_recipe

    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path / "home")}
    pools = {"cpu": ("process", "cpu.json"), "gpu": ("process", "gpu-process.json"),
             "gpu-k8s": ("kubernetes", "gpu-kubernetes.json")}
    for name, (kind, file) in pools.items():
        done = subprocess.run(
            [sys.executable, "-m", "prefect", "work-pool", "create", name, "--type", kind,
             "--base-job-template", str(REPO / "deploy" / "work-pools" / file), "--overwrite"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    k8s = httpx.get(f"{prefect_server}/work_pools/gpu-k8s").json()["base_job_template"]
    [container] = k8s["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"
    assert k8s["variables"]["properties"]["gpu_count"]["default"] == 1

    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", "deploy/prefect.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    spec = yaml.safe_load((REPO / "deploy" / "prefect.yaml").read_text())
    for entry in spec["deployments"]:
        made = httpx.get(f"{prefect_server}/deployments/name/recipeflow-deployment/{entry['name']}").json()
        assert made["work_pool_name"] == "cpu" and made["global_concurrency_limit"]["limit"] == 1
        assert [s["schedule"]["cron"] for s in made["schedules"]] == [entry["schedules"][0]["cron"]]
        recipe = made["parameters"]["recipe"]
        load_recipe(str(REPO / recipe), made["parameters"].get("overrides", []))  # valid as deployed

    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())["services"]
    assert {"postgres", "prefect-server", "minio", "cpu-worker", "gpu-worker"} <= set(compose)
    assert "--pool cpu" in compose["cpu-worker"]["command"] and "--pool gpu" in compose["gpu-worker"]["command"]
    [device] = compose["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "postgresql" in compose["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]


def test_gpu_pool_needs_a_server_its_workers_reach(tmp_path, monkeypatch):
    from recipeflow.orchestration.runner import RunRefused, run_recipe

    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # the embedded server: no worker reaches it

    data = tmp_path / "docs.jsonl"
    data.write_bytes(jsonl(sample_docs()[:2]))
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "name": "r", "inputs": {"docs": {"path": str(data)}}, "process": [{"normalize_whitespace": {}}],
        "output": {"path": str(tmp_path / "out")}, "run": {"pools": {"gpu": "gpu"}},
    }))
    with pytest.raises(RunRefused, match="run.pools.gpu: .*set PREFECT_API_URL"):
        run_recipe(str(path), progress=False)

"""End to end: recipes run as real Prefect flow runs (embedded server) and commit versions."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from recipeflow.datasets import versions
from recipeflow.orchestration.runner import RunRefused, run_recipe
from tests.conftest import REPO, SAMPLE_WARC

SAMPLE_JSONL = REPO / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"


def write_recipe(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def quickstart_like(tmp_path: Path, **run) -> dict:
    return {
        "name": "sample-pages",
        "inputs": {"pages": {"path": str(SAMPLE_WARC), "format": "warc"}},
        "process": [
            {"html_extract": {}},
            {"normalize_whitespace": {}},
            {"text_length_filter": {"min_length": 1500}},
            {"exact_dedup": {}},
        ],
        "output": {"path": str(tmp_path / "dataset"), "keep_rejected": True},
        "run": {"executor": "threads", "workers": 2, "shard_size": 100, **run},
    }


def test_run_commits_a_version_with_manifest_and_artifacts(tmp_path, prefect_api):
    recipe = write_recipe(tmp_path / "r.yaml", quickstart_like(tmp_path))
    [manifest] = run_recipe(str(recipe), progress=False)

    root = str(tmp_path / "dataset")
    [listed] = versions.list_versions(root)
    assert listed["version"] == manifest["version"]
    folder = Path(listed["path"])
    assert (folder / "manifest.json").is_file()

    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest, default=str))
    for key in ("version", "created_at", "recipe", "recipe_sha256", "inputs", "parent",
                "operators", "files", "recipeflow_version"):
        assert key in on_disk, key
    assert on_disk["parent"] is None
    [inp] = on_disk["inputs"]
    assert inp["files"][0]["sha256"] and inp["files"][0]["records"] == 308

    ops = {o["operator"]: o for o in on_disk["operators"]}
    assert set(ops) == {"read", "html_extract", "normalize_whitespace", "text_length_filter", "exact_dedup"}
    assert ops["text_length_filter"]["params"] == {"min_length": 1500, "max_length": None}
    assert ops["text_length_filter"]["version"]
    assert ops["text_length_filter"]["rejected"] > 0
    assert ops["exact_dedup"]["rejected"] > 0  # the sample holds mirrored copies of pages
    # Each step sees what the previous one kept.
    chain = [o for o in on_disk["operators"] if o["operator"] != "read"]
    for before, after in zip(chain, chain[1:]):
        assert before["docs_out"] == after["docs_in"]

    # Data files: the listed rows, sizes and checksums; the expected columns.
    total = 0
    for entry in on_disk["files"]:
        path = folder / entry["path"]
        assert path.stat().st_size == entry["bytes"]
        table = pq.read_table(path)
        assert table.num_rows == entry["rows"]
        total += table.num_rows
        assert table.column_names[:2] == ["id", "text"]
        for column in ("url", "input_name", "input_file", "input_record"):
            assert column in table.column_names
        assert min(len(t) for t in table.column("text").to_pylist()) >= 1500
    assert total == on_disk["rows"] == ops["exact_dedup"]["docs_out"]

    # Rejected documents say which operator dropped them, why, and the statistic.
    rejected = pq.read_table([folder / f["path"] for f in on_disk["rejected_files"]][0]).to_pylist()
    reasons = {(r["rejected_by"], r["reject_reason"]) for r in rejected}
    assert ("text_length_filter", "text_length_below_min") in reasons
    short = next(r for r in rejected if r["rejected_by"] == "text_length_filter")
    assert short["reject_statistic"] == "text_length" and short["reject_value"] < 1500
    assert short["rejected_at"] == "main.process[2]"
    assert on_disk["rejected_rows"] == sum(o["rejected"] for o in on_disk["operators"])

    # Artifacts published by the flow run.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["sample-pages-operator-counts", "sample-pages-summary"])
            )
        )
    kinds = {a.key: a.type for a in artifacts}
    assert kinds == {"sample-pages-operator-counts": "table", "sample-pages-summary": "markdown"}
    table_artifact = next(a for a in artifacts if a.type == "table")
    rows = json.loads(table_artifact.data) if isinstance(table_artifact.data, str) else table_artifact.data
    assert {r["operator"] for r in rows} >= {"html_extract", "exact_dedup"}


def test_unchanged_run_commits_nothing_and_a_changed_one_has_the_parent(tmp_path, prefect_api):
    recipe = write_recipe(tmp_path / "r.yaml", quickstart_like(tmp_path))
    [first] = run_recipe(str(recipe), progress=False)
    # Same inputs, recipe and operators (another executor and worker count do not matter).
    [same] = run_recipe(str(recipe), ["run.executor=processes", "run.workers=1"], progress=False)
    assert same["committed"] is False and same["version"] is None
    assert same["parent"] == first["version"] and "nothing changed" in same["message"]
    assert same["run"]["tasks"]["computed"] == 0  # no stage ran at all
    assert [v["version"] for v in versions.list_versions(str(tmp_path / "dataset"))] == [first["version"]]

    [second] = run_recipe(str(recipe), ["output.keep_rejected=false"], progress=False)
    assert second["parent"] == first["version"]
    assert [f["sha256"] for f in second["files"]] == [f["sha256"] for f in first["files"]]
    assert second["run"]["tasks"]["computed"] == 0 and second["run"]["tasks"]["cached"] > 0
    assert [v["version"] for v in versions.list_versions(str(tmp_path / "dataset"))] == [
        first["version"], second["version"]
    ]


def test_same_output_bytes_whatever_executor_and_workers(tmp_path, prefect_api):
    # JSON lines, not the WARC: the clusters' test (test_executors.py) runs the HTML chain.
    checksums = []
    for i, run in enumerate(
        [{"executor": "threads", "workers": 1}, {"executor": "processes", "workers": 2}]
    ):
        data = quickstart_like(tmp_path / str(i), **run)
        data["inputs"] = {"pages": {"path": str(SAMPLE_JSONL)}}
        data["process"] = [{"normalize_whitespace": {}}, {"text_length_filter": {"min_length": 1500}},
                           {"exact_dedup": {}}]
        data["run"]["shard_size"] = 60
        recipe = write_recipe(tmp_path / f"r{i}.yaml", data)
        [manifest] = run_recipe(str(recipe), progress=False)
        checksums.append(
            ([(f["path"], f["sha256"]) for f in manifest["files"]],
             [(f["path"], f["sha256"]) for f in manifest["rejected_files"]])
        )
    assert checksums[0] == checksums[1]
    assert checksums[0][0]


def test_bad_input_is_counted_and_kept(tmp_path, prefect_api):
    src = tmp_path / "in"
    src.mkdir()
    good = {"id": "g1", "text": "a good document " * 10, "source": "web"}
    lines = [
        json.dumps(good).encode(),
        b'{"id": "broken", "text": "no closing brace"',
        b'{"id": "latin1", "text": "caf\xe9 au lait"}',
        json.dumps({"id": "notext", "body": "the text field is missing"}).encode(),
        json.dumps({"id": "g2", "text": "x" * (8 * 1024 * 1024)}).encode(),  # an 8 MB document
        b"[1, 2, 3]",
    ]
    (src / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (src / "empty.jsonl").write_bytes(b"")
    with gzip.open(src / "b.jsonl.gz", "wb") as f:
        f.write(json.dumps({"id": "g3", "text": "another good document here"}).encode() + b"\n{oops\n")

    recipe = write_recipe(
        tmp_path / "r.yaml",
        {
            "name": "bad-input",
            "inputs": {"docs": {"path": str(src / "*.jsonl*")}},
            "process": [{"text_length_filter": {"min_length": 5}}],
            "output": {"path": str(tmp_path / "out"), "keep_rejected": True},
        },
    )
    [manifest] = run_recipe(str(recipe), progress=False)
    assert manifest["rows"] == 3  # g1, g2 (8 MB), g3
    read = next(o for o in manifest["operators"] if o["operator"] == "read")
    assert (read["docs_in"], read["docs_out"], read["rejected"]) == (8, 3, 5)

    folder = Path(versions.version_path(str(tmp_path / "out"), manifest["version"]))
    rejected = [r for f in manifest["rejected_files"] for r in pq.read_table(folder / f["path"]).to_pylist()]
    unreadable = [r for r in rejected if r["reject_reason"] == "unreadable"]
    assert len(unreadable) == 5
    assert all(r["rejected_by"] == "read" and r["reject_detail"] for r in unreadable)
    where = {(Path(r["input_file"]).name, r["input_record"]) for r in unreadable}
    assert where == {("a.jsonl", 1), ("a.jsonl", 2), ("a.jsonl", 3), ("a.jsonl", 5), ("b.jsonl.gz", 1)}
    kept = [r for f in manifest["files"] for r in pq.read_table(folder / f["path"]).to_pylist()]
    assert sorted(r["id"] for r in kept) == ["g1", "g2", "g3"]
    assert max(len(r["text"]) for r in kept) == 8 * 1024 * 1024


def test_input_matching_nothing_is_refused_before_work(tmp_path):
    data = quickstart_like(tmp_path)
    data["inputs"]["pages"]["path"] = str(tmp_path / "nothing-here" / "*.warc.gz")
    recipe = write_recipe(tmp_path / "r.yaml", data)
    with pytest.raises(RunRefused) as err:
        run_recipe(str(recipe), progress=False)
    message = str(err.value)
    assert "r.yaml" in message and "inputs.pages.path" in message
    assert not (tmp_path / "dataset").exists()


def test_unwritable_output_is_refused_before_work(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    data = quickstart_like(tmp_path)
    data["output"]["path"] = str(tmp_path / "a-file" / "dataset")
    recipe = write_recipe(tmp_path / "r.yaml", data)
    with pytest.raises(RunRefused) as err:
        run_recipe(str(recipe), progress=False)
    assert "output.path" in str(err.value)


def test_killed_run_leaves_no_version_and_resumes(tmp_path):
    """SIGKILL the CLI mid-run: nothing is visible; a new run finishes from finished shards."""
    data = quickstart_like(tmp_path, shard_size=10, workers=1)
    recipe = write_recipe(tmp_path / "r.yaml", data)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "recipeflow.cli", "run", str(recipe), "--no-progress"]
    # Own process group, so the kill also takes the embedded Prefect server with it.
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Finished work: a batch's shards are finished together, in their pack's result file.
    packs = tmp_path / "dataset" / "cache" / "packs"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(packs.glob("*/result.json"))) < 3:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = {p.parent.name: p.stat().st_mtime_ns for p in packs.glob("*/result.json")}
    assert finished_before
    assert versions.list_versions(str(tmp_path / "dataset")) == []

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [version] = versions.list_versions(str(tmp_path / "dataset"))
    assert version["rows"] > 0
    # The finished shards were not redone: their result files are untouched.
    for address, mtime in finished_before.items():
        assert (packs / address / "result.json").stat().st_mtime_ns == mtime
    # And the result equals an uninterrupted run's, byte for byte.
    fresh = subprocess.run(
        cmd + ["--set", f"output.path={tmp_path / 'fresh'}"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    [fresh_version] = versions.list_versions(str(tmp_path / "fresh"))

    def checksums(root: str, version: str) -> list:
        manifest = versions.read_manifest(root, version)
        return [(f["path"], f["sha256"]) for f in manifest["files"] + manifest["rejected_files"]]

    assert checksums(str(tmp_path / "dataset"), version["version"]) == checksums(
        str(tmp_path / "fresh"), fresh_version["version"]
    )


def test_graph_recipe_with_rejected_stream_union_and_two_outputs(tmp_path, prefect_api):
    recipe = write_recipe(
        tmp_path / "graph.yaml",
        {
            "name": "graph",
            "inputs": {"pages": {"path": str(SAMPLE_WARC)}},
            "nodes": {
                "long": {
                    "from": "pages",
                    "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 3000}}],
                },
                "medium": {
                    "from": "long.rejected",
                    "process": [{"text_length_filter": {"min_length": 1000}}],
                },
                "joined": {"from": ["long", "medium"], "process": [{"exact_dedup": {}}]},
            },
            "outputs": {
                "joined": {"path": str(tmp_path / "joined"), "keep_rejected": True},
                "medium": {"path": str(tmp_path / "medium"), "format": "jsonl.gz"},
            },
            "run": {"shard_size": 64},
        },
    )
    joined, medium = run_recipe(str(recipe), progress=False)
    counts = {o["step"]: o for o in joined["operators"]}
    long_kept = counts["long.process[1]"]["docs_out"]
    long_rejected = counts["long.process[1]"]["rejected"] + counts["long.process[0]"]["rejected"]
    assert counts["medium.process[0]"]["docs_in"] == long_rejected
    medium_kept = counts["medium.process[0]"]["docs_out"]
    assert counts["joined.process[0]"]["docs_in"] == long_kept + medium_kept
    assert joined["rows"] == counts["joined.process[0]"]["docs_out"]
    assert medium["rows"] == medium_kept and medium["files"][0]["path"].endswith(".jsonl.gz")

    folder = Path(versions.version_path(str(tmp_path / "medium"), medium["version"]))
    with gzip.open(folder / medium["files"][0]["path"], "rt") as f:
        docs = [json.loads(line) for line in f]
    assert all(1000 <= len(d["text"]) < 3000 for d in docs)
    # A document rescued from the rejected stream drops the rejection columns of the first node.
    assert "reject_reason" not in docs[0]


def test_partitioned_barrier_gives_the_same_result(tmp_path, prefect_api):
    """exact_dedup in one resolve task or in 3 partition tasks + a merge: same bytes."""
    results = []
    for partitions in (1, 3):
        data = quickstart_like(tmp_path / str(partitions))
        data["process"][-1] = {"exact_dedup": {"partitions": partitions}}
        recipe = write_recipe(tmp_path / f"p{partitions}.yaml", data)
        [manifest] = run_recipe(str(recipe), progress=False)
        dedup = next(o for o in manifest["operators"] if o["operator"] == "exact_dedup")
        results.append((dedup["rejected"], [f["sha256"] for f in manifest["files"]]))
    assert results[0] == results[1]
    assert results[0][0] > 0


def test_dataset_as_input_retention_and_cache_entries(tmp_path, prefect_api):
    first_recipe = write_recipe(tmp_path / "a.yaml", quickstart_like(tmp_path))
    [a1] = run_recipe(str(first_recipe), progress=False)
    assert any(e.startswith("packs/") for e in a1["cache_entries"])  # a batch's shards' files
    assert any(e.startswith("decisions/") for e in a1["cache_entries"])
    root = str(tmp_path / "dataset")

    downstream = {
        "name": "downstream",
        "inputs": {"pages": {"path": root}},  # a dataset root: its latest version
        "process": [{"text_length_filter": {"min_length": 3000}}],
        "output": {"path": str(tmp_path / "downstream"), "keep_last": 2},
    }
    recipe = write_recipe(tmp_path / "b.yaml", downstream)
    [b1] = run_recipe(str(recipe), progress=False)
    [inp] = b1["inputs"]
    assert (inp["dataset"], inp["version"]) == (root, a1["version"])
    assert b1["rows"] == sum(
        1 for f in a1["files"]
        for t in pq.read_table(Path(versions.version_path(root, a1["version"])) / f["path"]).column("text").to_pylist()
        if len(t) >= 3000
    )

    downstream["inputs"]["pages"]["path"] = f"{root}@{a1['version']}"
    recipe = write_recipe(tmp_path / "b.yaml", downstream)
    [b2] = run_recipe(str(recipe), progress=False)
    [b3] = run_recipe(str(recipe), ["run.cache=false"], progress=False)  # commits even unchanged
    assert b2["inputs"][0]["version"] == a1["version"]
    # keep_last: 2 -> the oldest of three versions is gone, folder and all.
    assert b3["deleted_versions"] == [b1["version"]]
    assert [v["version"] for v in versions.list_versions(str(tmp_path / "downstream"))] == [b2["version"], b3["version"]]
    assert not Path(versions.version_path(str(tmp_path / "downstream"), b1["version"])).exists()

    downstream["inputs"]["pages"]["path"] = f"{root}@no-such-version"
    recipe = write_recipe(tmp_path / "b.yaml", downstream)
    with pytest.raises(RunRefused) as error:
        run_recipe(str(recipe), progress=False)
    assert a1["version"] in str(error.value) and "inputs.pages.path" in str(error.value)


def test_two_runs_at_once_commit_distinct_versions(tmp_path):
    """Two CLI runs committing to the same dataset at the same time both succeed."""
    # run.cache: false: each commits, even if the other committed the same data first.
    recipe = write_recipe(tmp_path / "r.yaml", quickstart_like(tmp_path, shard_size=50, cache=False))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "recipeflow.cli", "run", str(recipe), "--no-progress"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env={**env, "PREFECT_HOME": str(tmp_path / f"ph{i}")},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    listed = versions.list_versions(str(tmp_path / "dataset"))
    assert len(listed) == 2 and listed[0]["version"] != listed[1]["version"]
    shas = [
        [f["sha256"] for f in versions.read_manifest(str(tmp_path / "dataset"), v["version"])["files"]]
        for v in listed
    ]
    assert shas[0] == shas[1] and shas[0]


def test_commit_is_an_asset_materialization_with_dataset_artifacts(tmp_path, prefect_api):
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    recipe = write_recipe(tmp_path / "r.yaml", quickstart_like(tmp_path))
    [first] = run_recipe(str(recipe), progress=False)
    [second] = run_recipe(str(recipe), ["output.keep_rejected=false"], progress=False)
    dataset_key = f"file://{tmp_path / 'dataset'}"

    events: list = []
    for _ in range(60):  # the server stores events asynchronously
        # Filtered by the dataset on the server: the session's earlier runs emit many more.
        response = httpx.post(
            f"{prefect_api}/events/filter",
            json={
                "filter": {
                    "event": {"prefix": ["prefect.asset.materialization"]},
                    "resource": {"id": [dataset_key]},
                    "order": "ASC",
                },
                "limit": 50,
            },
        )
        response.raise_for_status()
        events = [e for e in response.json()["events"] if e["resource"]["prefect.resource.id"] == dataset_key]
        if len(events) >= 2:
            break
        time.sleep(0.5)
    assert len(events) == 2 and all(e["event"] == "prefect.asset.materialization.succeeded" for e in events)
    upstream = {r["prefect.resource.id"] for r in events[-1]["related"] if r.get("prefect.resource.role") == "asset"}
    assert f"file://{SAMPLE_WARC}" in upstream

    with get_client(sync_client=True) as client:
        latest = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["dataset-versions", "dataset-lineage"]))
        )
    by_key = {a.key: a for a in sorted(latest, key=lambda a: a.created)}  # the newest per key
    table = by_key["dataset-versions"].data
    table = json.loads(table) if isinstance(table, str) else table
    assert [row["version"] for row in table] == [first["version"], second["version"]]
    card = by_key["dataset-lineage"].data
    assert second["version"] in card and str(SAMPLE_WARC) in card and "exact_dedup" in card

"""Versions that went wrong: a manifest torn by a full disk, a commit killed half-way."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from recipeflow.cli import main
from recipeflow.datasets import versions
from recipeflow.datasets.cache_admin import collect_garbage
from recipeflow.datasets.version_reader import UnknownVersion, open_version
from recipeflow.io import storage


def manifest(version: str, created_at: str) -> dict:
    return {"version": version, "created_at": created_at, "parent": None, "recipe_name": "r",
            "recipe_sha256": "0" * 64, "rows": 3, "files": [], "operators": [],
            "output": {"format": "parquet"}, "padding": "x" * 20_000}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "dataset"
    versions.commit(str(root), "v1", manifest("v1", "2026-01-01T00:00:00+00:00"))
    return root


class _FullDisk:
    """A file that takes ``limit`` bytes, then fails as a full disk does."""

    def __init__(self, file, limit: int):
        self.file, self.limit = file, limit

    def write(self, data):
        self.file.write(bytes(data)[: self.limit])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def full_disk_after(limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local files written through recipeflow's storage accept ``limit`` bytes, then fail."""
    monkeypatch.setattr(storage, "open", lambda path, mode="r", *a, **k: _FullDisk(open(path, mode, *a, **k), limit)
                        if "w" in mode else open(path, mode, *a, **k), raising=False)


def test_a_commit_on_a_full_disk_leaves_no_torn_manifest(root: Path, monkeypatch) -> None:
    full_disk_after(8192, monkeypatch)
    with pytest.raises(OSError, match="No space"):
        versions.commit(str(root), "v2", manifest("v2", "2026-01-02T00:00:00+00:00"))
    monkeypatch.undo()

    assert not (root / "versions" / "v2" / "manifest.json").exists()
    assert os.listdir(root / "versions" / "v2") == []  # no temporary file left behind either
    assert [v["version"] for v in versions.list_versions(str(root))] == ["v1"]


def test_readers_skip_and_report_a_torn_manifest(root: Path) -> None:
    torn = root / "versions" / "v2" / "manifest.json"
    torn.parent.mkdir()
    torn.write_text(json.dumps(manifest("v2", "2026-01-02T00:00:00+00:00"))[:8192])

    with pytest.warns(versions.UnreadableManifestWarning, match=str(torn)):
        assert [v["version"] for v in versions.list_versions(str(root))] == ["v1"]
    with pytest.warns(versions.UnreadableManifestWarning):
        assert versions.latest_version(str(root)) == "v1"
    with pytest.warns(versions.UnreadableManifestWarning):
        assert open_version(str(root)).id == "v1"
    with pytest.raises(UnknownVersion, match="manifest cannot be read.*not valid JSON"):
        open_version(str(root), "v2")

    result = invoke("versions", str(root))
    assert result.exit_code == 0 and "v1" in result.stdout
    assert f"warning: {torn}" in result.stderr


def test_versions_all_reports_and_gc_removes_a_half_written_version(root: Path) -> None:
    killed = root / "versions" / "v2"
    killed.mkdir()
    (killed / "part-00000.parquet").write_bytes(b"half")
    torn = root / "versions" / "v3"
    torn.mkdir()
    (torn / "manifest.json").write_text('{"version": "v3", "crea')
    recent = root / "versions" / "v4"  # a run committing right now: kept
    recent.mkdir()
    (recent / "part-00000.parquet").write_bytes(b"new")
    hours_ago = time.time() - 48 * 3600
    for path in (killed, killed / "part-00000.parquet", torn, torn / "manifest.json"):
        os.utime(path, (hours_ago, hours_ago))

    plain = invoke("versions", str(root)).stdout
    assert "v1" in plain and "v2" not in plain
    listed = invoke("versions", "--all", str(root)).stdout
    assert "v2  unfinished" in listed and "v3  unreadable" in listed and "v4  unfinished" in listed
    as_json = json.loads(invoke("versions", "--all", "--json", str(root)).stdout)
    assert [(v["version"], v.get("state", "committed")) for v in as_json] == [
        ("v1", "committed"), ("v2", "unfinished"), ("v3", "unreadable"), ("v4", "unfinished")]

    dry = collect_garbage(str(root), dry_run=True)
    assert [f.name for f in dry.removed_versions] == ["v2", "v3"] and killed.exists()
    text = invoke("cache", "gc", str(root)).stdout
    assert "removed 2 uncommitted version folders" in text
    assert not killed.exists() and not torn.exists() and recent.exists()
    assert [v["version"] for v in versions.list_versions(str(root))] == ["v1"]


def test_concurrent_commits_and_readers_never_see_a_partial_manifest(tmp_path: Path) -> None:
    import threading
    import warnings

    root = str(tmp_path / "dataset")
    big = {"padding": "y" * 2_000_000}  # written in several chunks: a reader could catch half
    problems: list[BaseException] = []
    done = threading.Event()

    def commit_many(writer: int) -> None:
        try:
            for i in range(6):
                version = f"2026010{writer}-00000{i}-w{writer}"
                versions.commit(root, version, {**manifest(version, f"2026-01-0{writer}T00:00:0{i}"), **big})
        except BaseException as error:  # noqa: BLE001 - reported by the test
            problems.append(error)

    def read_all_the_time() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a skipped (torn) manifest fails the test
            while not done.is_set():
                try:
                    versions.list_versions(root)
                except BaseException as error:  # noqa: BLE001
                    problems.append(error)
                    return

    writers = [threading.Thread(target=commit_many, args=(w,)) for w in (1, 2, 3)]
    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()

    assert problems == []
    assert len(versions.list_versions(root)) == 18
    assert not [p for p in (tmp_path / "dataset").rglob("*") if ".tmp-" in p.name]

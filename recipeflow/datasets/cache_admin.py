"""``recipeflow cache ls`` / ``cache gc``: the stage cache under ``<root>/cache/``.

An entry is one content-addressed folder, ``<kind>/<address>/``, with ``result.json`` written
last (see :mod:`recipeflow.engine.execute`). A committed version names the entries its run
used in its manifest (``cache_entries``: ``["stages/<address>", ...]``); a manifest without
that key uses none. ``gc`` drops entries no committed version uses and that are older than a
threshold: a recent entry may belong to a run still in progress. It also removes, under the
same threshold, version folders that were never committed (a commit killed half-way) or whose
manifest does not parse.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from recipeflow.io import storage
from recipeflow.datasets import versions

CACHE_DIR = "cache"  # as flow.CACHE_DIR (not imported: flow imports Prefect)
# "attempts": a run's notes of its tasks' starts (orchestration.attempts), removed when the run
# ends; a killed run's are stale entries like any other. "packs": files shared by a batch's
# shards (engine.packs), used by a version when its shards are; their ".staging" folder (files
# being written) is an entry too, removed when old.
KINDS = ("stages", "packs", "signatures", "decisions", "partitions", "indexes", "attempts")
RESULT = "result.json"  # as engine.cache_address.RESULT: written last, so its presence marks a finished entry
DEFAULT_OLDER_THAN_HOURS = 24.0
MANIFEST_KEY = "cache_entries"


@dataclass
class CacheEntry:
    """One cache folder: what it is, how big, when last written, which versions use it."""

    kind: str
    address: str
    url: str
    bytes: int = 0
    files: int = 0
    modified: float = 0.0  # epoch seconds of its newest file
    complete: bool = False  # has result.json: a finished task's result
    used_by: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """How manifests name it: ``<kind>/<address>``."""
        return f"{self.kind}/{self.address}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "address": self.address,
            "url": self.url,
            "bytes": self.bytes,
            "files": self.files,
            "modified": _iso(self.modified),
            "complete": self.complete,
            "used_by": self.used_by,
        }


@dataclass
class GcResult:
    removed: list[CacheEntry]
    kept_used: int
    kept_recent: int
    older_than_hours: float
    dry_run: bool
    removed_versions: list[versions.VersionFolder] = field(default_factory=list)
    kept_recent_versions: int = 0

    @property
    def freed_bytes(self) -> int:
        return sum(e.bytes for e in self.removed)

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "older_than_hours": self.older_than_hours,
            "removed": [e.as_json() for e in self.removed],
            "freed_bytes": self.freed_bytes,
            "kept_used": self.kept_used,
            "kept_recent": self.kept_recent,
            "removed_versions": [{"version": f.name, "state": f.state, "problem": f.problem,
                                  "path": f.path} for f in self.removed_versions],
            "kept_recent_versions": self.kept_recent_versions,
        }


def cache_root(root: str) -> str:
    return storage.join(storage.absolute(root), CACHE_DIR)


def used_entries(root: str) -> dict[str, list[str]]:
    """``<kind>/<address>`` → ids of the committed versions whose run used it."""
    used: dict[str, list[str]] = {}
    for manifest in versions.committed_manifests(storage.absolute(root)):
        for key in manifest.get(MANIFEST_KEY, []):
            used.setdefault(key.strip("/"), []).append(manifest["version"])
    return used


def list_entries(root: str) -> list[CacheEntry]:
    """Every entry of the cache at ``root``, by kind then address: one recursive listing per
    kind (a single request per page on object stores)."""
    used = used_entries(root)
    entries: list[CacheEntry] = []
    for kind in KINDS:
        found = _entries_of_kind(storage.join(cache_root(root), kind), kind)
        for entry in sorted(found.values(), key=lambda e: e.address):
            entry.used_by = used.get(entry.key, [])
            entries.append(entry)
    return entries


def _entries_of_kind(kind_url: str, kind: str) -> dict[str, CacheEntry]:
    fs, kind_path = storage.filesystem(kind_url)
    try:
        files = fs.find(kind_path, detail=True)
    except FileNotFoundError:
        return {}
    prefix = kind_path.rstrip("/") + "/"
    entries: dict[str, CacheEntry] = {}
    for path, info in files.items():
        if not path.startswith(prefix) or info.get("type") == "directory":
            continue
        address, _, rest = path[len(prefix):].partition("/")
        if not rest:
            continue  # a stray file beside the entries, not an entry
        entry = entries.setdefault(address, CacheEntry(kind, address, storage.join(kind_url, address)))
        entry.files += 1
        entry.bytes += int(info.get("size") or 0)
        entry.modified = max(entry.modified, modified_at(info))
        entry.complete = entry.complete or rest == RESULT
    return entries


def modified_at(info: dict[str, Any]) -> float:
    """A file's modification time in epoch seconds, whatever the filesystem calls it
    (local ``mtime``, S3 ``LastModified``, GCS ``updated``...)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, dt.datetime):
            return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0  # unknown: treated as old, but only unused entries are ever removed


def collect_garbage(
    root: str,
    older_than_hours: float = DEFAULT_OLDER_THAN_HOURS,
    dry_run: bool = False,
    now: float | None = None,
) -> GcResult:
    """Remove (or with ``dry_run`` only list) the entries that no committed version uses and
    whose newest file is older than ``older_than_hours``."""
    cutoff = (time.time() if now is None else now) - older_than_hours * 3600
    entries = list_entries(root)
    removable = [e for e in entries if not e.used_by and e.modified < cutoff]
    if not dry_run:
        for entry in removable:
            # result.json first: a half-removed entry then reads as unfinished, never as done.
            storage.remove(storage.join(entry.url, RESULT))
            storage.remove(entry.url, recursive=True)
    uncommitted = [f for f in versions.version_folders(root) if f.state in ("unfinished", "unreadable")]
    stale = [f for f in uncommitted if _newest_file(f.path) < cutoff]
    if not dry_run:
        for folder in stale:
            storage.remove(folder.path, recursive=True)
    return GcResult(
        removed_versions=stale,
        kept_recent_versions=len(uncommitted) - len(stale),
        removed=removable,
        kept_used=sum(1 for e in entries if e.used_by),
        kept_recent=sum(1 for e in entries if not e.used_by and e.modified >= cutoff),
        older_than_hours=older_than_hours,
        dry_run=dry_run,
    )


def _newest_file(url: str) -> float:
    """Epoch seconds of the newest file under ``url`` (0 when it holds none)."""
    fs, path = storage.filesystem(url)
    try:
        files = fs.find(path, detail=True)
    except FileNotFoundError:
        return 0.0
    return max((modified_at(info) for info in files.values()), default=0.0)


# -- text -------------------------------------------------------------------------------------


def totals(entries: list[CacheEntry]) -> dict[str, Any]:
    """Entries and bytes per kind, and used / unused overall."""
    by_kind = {k: {"entries": 0, "bytes": 0} for k in KINDS}
    for e in entries:
        by_kind[e.kind]["entries"] += 1
        by_kind[e.kind]["bytes"] += e.bytes
    used = [e for e in entries if e.used_by]
    return {
        "entries": len(entries),
        "bytes": sum(e.bytes for e in entries),
        "used": {"entries": len(used), "bytes": sum(e.bytes for e in used)},
        "unused": {"entries": len(entries) - len(used), "bytes": sum(e.bytes for e in entries if not e.used_by)},
        "by_kind": by_kind,
    }


def render_list(root: str, entries: list[CacheEntry]) -> str:
    if not entries:
        return f"no cache entries under {cache_root(root)}"
    lines = [f"{'entry':<30} {'size':>9}  {'modified (UTC)':<19}  used by"]
    for e in entries:
        state = "" if e.complete else " (unfinished)"
        used = ", ".join(e.used_by) if e.used_by else "-"
        name = f"{e.kind}/{e.address[:16]}"
        lines.append(f"{name:<30} {human_bytes(e.bytes):>9}  {_iso(e.modified)[:19]:<19}  {used}{state}")
    t = totals(entries)
    lines.append(
        f"{t['entries']} entries, {human_bytes(t['bytes'])}: {t['used']['entries']} used by a version "
        f"({human_bytes(t['used']['bytes'])}), {t['unused']['entries']} unused ({human_bytes(t['unused']['bytes'])})"
    )
    return "\n".join(lines)


def render_gc(root: str, result: GcResult) -> str:
    verb = "would remove" if result.dry_run else "removed"
    lines = [f"{e.key}  {human_bytes(e.bytes)}  modified {_iso(e.modified)[:19]}" for e in result.removed]
    lines += [f"version {f.name}  {f.state}: {f.problem}" for f in result.removed_versions]
    if result.removed_versions or result.kept_recent_versions:
        lines.append(
            f"{verb} {len(result.removed_versions)} uncommitted version folders; kept "
            f"{result.kept_recent_versions} newer than {result.older_than_hours:g} h")
    lines.append(
        f"{verb} {len(result.removed)} entries ({human_bytes(result.freed_bytes)}) under {cache_root(root)}; "
        f"kept {result.kept_used} used by a version and {result.kept_recent} unused but newer than "
        f"{result.older_than_hours:g} h"
    )
    return "\n".join(lines)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat()

"""``recipeflow diff``: what changed between two versions of a dataset.

Documents are matched by id. Each version is streamed file by file into a map id → row hash
(the text is never held), so memory is a few dozen bytes per document whatever the texts'
size. "Changed" = same id, different content: every column except the lineage columns
(``input_name``, ``input_file``, ``input_record``), which say where a document was read
from, not what it is — a record that moves in its file is not a changed document.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from recipeflow.datasets import version_reader
from recipeflow.datasets.version_reader import Version
from recipeflow.operators import document as doc

DEFAULT_LIMIT = 20
_HASH_MASK = (1 << 64) - 1
_NOT_CONTENT = frozenset(doc.LINEAGE_COLUMNS)
_NOT_FIELDS = _NOT_CONTENT | {doc.TEXT}  # hashed apart from the text


@dataclass
class DocumentChanges:
    """Counts of documents added, removed and changed, with up to ``limit`` ids of each."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    added_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT


@dataclass
class VersionDiff:
    root: str
    a: dict[str, Any]
    b: dict[str, Any]
    documents: DocumentChanges
    columns: dict[str, list[str]]  # columns only in A ("removed"), only in B ("added")
    inputs: dict[str, list[str]]  # input file URLs added, removed, changed (by sha256)
    operators: list[dict[str, Any]]  # per step: docs in/out in A and in B
    recipe_changed: bool
    recipe_changes: list[str] = field(default_factory=list)  # "path: A → B", per changed field

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def diff_versions(root: str, a: str, b: str, limit: int = DEFAULT_LIMIT) -> VersionDiff:
    """Compare versions ``a`` and ``b`` (ids, ``latest``, or ``parent`` of the other one)."""
    first, second = version_reader.open_pair(root, a, b)
    hashes_a, columns_a = row_hashes(first)
    hashes_b, columns_b = row_hashes(second)
    return VersionDiff(
        root=first.root,
        a=_version_summary(first),
        b=_version_summary(second),
        documents=compare_documents(hashes_a, hashes_b, limit),
        columns={"removed": sorted(columns_a - columns_b), "added": sorted(columns_b - columns_a)},
        inputs=compare_input_files(first.manifest, second.manifest),
        operators=compare_operators(first.manifest, second.manifest),
        recipe_changed=first.manifest.get("recipe_sha256") != second.manifest.get("recipe_sha256"),
        recipe_changes=recipe_changes(first.manifest.get("recipe"), second.manifest.get("recipe")),
    )


def recipe_changes(a: Any, b: Any, path: str = "") -> list[str]:
    """What changed between two resolved recipes, one ``path: A → B`` line per changed value
    (``+``/``-`` for a field only in B / only in A); steps are named by their operator."""
    if isinstance(a, dict) and isinstance(b, dict):
        lines = []
        for key in list(a) + [k for k in b if k not in a]:
            where = f"{path}.{key}" if path else str(key)
            if key not in b:
                lines.append(f"- {where}: {_short(a[key])}")
            elif key not in a:
                lines.append(f"+ {where}: {_short(b[key])}")
            else:
                lines += recipe_changes(a[key], b[key], where)
        return lines
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (x, y) in enumerate(zip(a, b)) for line in recipe_changes(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {_short(a)} → {_short(b)}"]


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _version_summary(version: Version) -> dict[str, Any]:
    m = version.manifest
    return {
        "version": version.id,
        "created_at": m.get("created_at"),
        "rows": m.get("rows"),
        "tokens": m.get("tokens"),
        "recipe_sha256": m.get("recipe_sha256"),
    }


# -- documents --------------------------------------------------------------------------------


def row_hash(row: dict[str, Any]) -> int:
    """A 64-bit hash of a row's content: every column but the lineage ones, nulls left out
    (so a column missing from one file and null in another read the same)."""
    fields = {k: v for k, v in row.items() if k not in _NOT_FIELDS and v is not None}
    digest = hashlib.blake2b(_json_bytes(fields), digest_size=8)
    # The text is hashed as it is: JSON-escaping long texts would cost more than the hash.
    text = row.get(doc.TEXT)
    digest.update(b"\0" + (text.encode("utf-8") if isinstance(text, str) else _json_bytes(text)))
    return int.from_bytes(digest.digest(), "big")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


def row_hashes(version: Version) -> tuple[dict[str, int], set[str]]:
    """id → hash of the version's data rows (file order), and the column names seen.

    An id held by several rows gets the sum of their hashes: the same rows in any order
    give the same value, one more or one less copy does not.
    """
    hashes: dict[str, int] = {}
    columns: set[str] = set()
    for entry in version.manifest.get("files", []):
        for rows in version_reader.iter_row_batches(version.file_url(entry), version.format):
            for row in rows:
                columns.update(row)
                key = str(row.get(doc.ID))
                hashes[key] = (hashes.get(key, 0) + row_hash(row)) & _HASH_MASK
    return hashes, columns - _NOT_CONTENT


def compare_documents(a: dict[str, int], b: dict[str, int], limit: int) -> DocumentChanges:
    """Ids in B only (added, B's order), in A only (removed, A's order), in both with another
    hash (changed, B's order)."""
    changes = DocumentChanges(limit=limit)
    for doc_id, digest in b.items():
        if doc_id not in a:
            changes.added += 1
            _note(changes.added_ids, doc_id, limit)
        elif a[doc_id] != digest:
            changes.changed += 1
            _note(changes.changed_ids, doc_id, limit)
        else:
            changes.unchanged += 1
    for doc_id in a:
        if doc_id not in b:
            changes.removed += 1
            _note(changes.removed_ids, doc_id, limit)
    return changes


def _note(ids: list[str], doc_id: str, limit: int) -> None:
    if len(ids) < limit:
        ids.append(doc_id)


# -- manifests: inputs and operators ----------------------------------------------------------


def _input_files(manifest: dict[str, Any]) -> dict[str, str | None]:
    return {f["url"]: f.get("sha256") for i in manifest.get("inputs", []) for f in i.get("files", [])}


def compare_input_files(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[str]]:
    """Input file URLs only in B, only in A, and in both with another sha256."""
    files_a, files_b = _input_files(a), _input_files(b)
    return {
        "added": [url for url in files_b if url not in files_a],
        "removed": [url for url in files_a if url not in files_b],
        "changed": [url for url in files_b if url in files_a and files_a[url] != files_b[url]],
    }


def compare_operators(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (node, step) of either version, A's order first: operator and documents
    in/out in A and in B (``None`` where the version has no such step)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for side, manifest in (("a", a), ("b", b)):
        for op in manifest.get("operators", []):
            row = rows.setdefault(
                (op.get("node", ""), op["step"]),
                {"node": op.get("node"), "step": op["step"], "operator": op["operator"], "a": None, "b": None},
            )
            row[side] = {"docs_in": op["docs_in"], "docs_out": op["docs_out"]}
            # Tokens once documents carry n_tokens; documents removed per rejection reason.
            row[side].update({k: op[k] for k in ("tokens_in", "tokens_out") if op.get(k) is not None})
            if op.get("reasons"):
                row[side]["reasons"] = dict(op["reasons"])
    for row in rows.values():
        row["reasons"] = _reason_changes(row["a"], row["b"])
    return list(rows.values())


def _reason_changes(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """Per rejection reason: documents it removed in A and in B (0 where it removed none)."""
    reasons_a = (a or {}).get("reasons", {})
    reasons_b = (b or {}).get("reasons", {})
    return {
        reason: {"a": reasons_a.get(reason, 0), "b": reasons_b.get(reason, 0)}
        for reason in sorted(set(reasons_a) | set(reasons_b))
    }


# -- text -------------------------------------------------------------------------------------


def render_text(result: VersionDiff) -> str:
    """The diff for a terminal."""
    d = result.documents
    lines = [
        f"{result.root}: {result.a['version']} ({result.a['rows']} rows{_tokens(result.a)})"
        f" → {result.b['version']} ({result.b['rows']} rows{_tokens(result.b)})",
        f"documents: {d.added} added, {d.removed} removed, {d.changed} changed, {d.unchanged} unchanged",
    ]
    for label, count, ids in (("added", d.added, d.added_ids), ("removed", d.removed, d.removed_ids),
                              ("changed", d.changed, d.changed_ids)):
        if ids:
            more = f" (first {len(ids)} of {count})" if count > len(ids) else ""
            lines.append(f"  {label}{more}: " + ", ".join(ids))
    if result.columns["added"] or result.columns["removed"]:
        lines.append(f"columns: added {result.columns['added'] or '-'}, removed {result.columns['removed'] or '-'}")
    lines.append("recipe: changed" if result.recipe_changed else "recipe: same")
    lines += [f"  {change}" for change in result.recipe_changes]
    for label in ("added", "removed", "changed"):
        for url in result.inputs[label]:
            lines.append(f"input file {label}: {url}")
    lines.append(f"  {'step':<34} {'operator':<22} {'in A':>8} {'in B':>8} {'out A':>8} {'out B':>8}")
    for op in result.operators:
        lines.append(
            f"  {op['step']:<34} {op['operator']:<22} {_count(op['a'], 'docs_in'):>8} {_count(op['b'], 'docs_in'):>8}"
            f" {_count(op['a'], 'docs_out'):>8} {_count(op['b'], 'docs_out'):>8}"
            + (
                f"  tokens out {_count(op['a'], 'tokens_out')} → {_count(op['b'], 'tokens_out')}"
                if any(side and side.get("tokens_out") is not None for side in (op["a"], op["b"]))
                else ""
            )
        )
        for reason, n in op.get("reasons", {}).items():
            change = f"{n['b'] - n['a']:+d}" if n["a"] != n["b"] else "same"
            lines.append(f"      {reason:<30} {n['a']:>8} {n['b']:>8}  ({change})")
    return "\n".join(lines)


def _tokens(summary: dict[str, Any]) -> str:
    return f", {summary['tokens']:,} tokens" if summary.get("tokens") is not None else ""


def _count(side: dict[str, Any] | None, key: str) -> str:
    return "-" if side is None or side.get(key) is None else str(side[key])

"""The dataset card: ``<root>/README.md``, rewritten at every commit, makes the dataset root a
Hugging Face dataset repository.

Its YAML header's ``configs`` name exactly the files to read — ``default`` (the latest
snapshot's data files), one config per kept version, and ``rejected`` (the latest snapshot's
rejected files) — so ``datasets.load_dataset(ROOT)`` reads the latest snapshot and nothing else
under the root (cache/, history/, manifests, models) is picked up. The body says what the
dataset is: recipe, operators with their counts and drop reasons, lineage.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import yaml

from recipeflow.datasets import versions
from recipeflow.io import storage

CARD = "README.md"
DEFAULT_CONFIG = "default"
REJECTED_CONFIG = "rejected"
LANG_COLUMNS = ("lang", "language")
# size_categories of the Hub, by number of documents.
_SIZE_CATEGORIES = [
    (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
]
_LANGUAGES_READ = 200_000  # rows read for the language list: enough to name the languages


def size_category(rows: int) -> str:
    return next((label for limit, label in _SIZE_CATEGORIES if rows < limit), "n>1B")


def data_files(manifest: dict[str, Any], key: str = "files") -> list[str]:
    """A version's files of one split, as paths relative to the dataset root (Megatron data:
    the Parquet file of each pair's documents, since `datasets` cannot read token ids)."""
    return [
        versions.entry_repo_path(manifest["version"], {**e, "path": e["documents"]["path"]} if "documents" in e else e)
        for e in manifest.get(key, [])
    ]


def _config(name: str, files: list[str], fmt: str) -> dict[str, Any]:
    # `datasets` picks its reader (parquet, json) from the files' extensions.
    return {"config_name": name, "data_files": [{"split": "train", "path": files}]}


def languages(root: str, manifest: dict[str, Any]) -> list[str]:
    """The values of the ``lang`` (or ``language``) column of the version's data, most frequent
    first; empty when there is no such column (or the data is not Parquet)."""
    if manifest.get("output", {}).get("format", "parquet") != "parquet":
        return []
    import fsspec
    import pyarrow.parquet as pq

    counts: Counter[str] = Counter()
    read = 0
    for entry in manifest.get("files", []):
        with fsspec.open(versions.entry_url(root, manifest["version"], entry), "rb") as f:
            parquet = pq.ParquetFile(f)
            column = next((c for c in LANG_COLUMNS if c in parquet.schema_arrow.names), None)
            if column is None:
                return []
            values = parquet.read(columns=[column]).column(column).to_pylist()
        counts.update(v for v in values if isinstance(v, str) and v and v != "unknown")
        read += len(values)
        if read >= _LANGUAGES_READ:
            break
    return [lang for lang, _ in counts.most_common()]


_SIMPLE_TYPES = {
    "string": "string", "large_string": "large_string", "bool": "bool", "null": "null",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "halffloat": "float16", "float": "float32", "double": "float64",
}


def _hf_dtype(arrow_type: Any) -> Any:
    """A `datasets` feature for an Arrow type, as the card's YAML writes it; None if not simple."""
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return f"timestamp[{arrow_type.unit}" + (f", tz={arrow_type.tz}]" if arrow_type.tz else "]")
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        inner = _hf_dtype(arrow_type.value_type)
        return None if inner is None or isinstance(inner, dict) else {"list": inner}
    return _SIMPLE_TYPES.get(str(arrow_type))


def features(encoded_schema: str | None) -> list[dict[str, Any]] | None:
    """The card's ``features`` for a split's schema (from the manifest), or None when a column
    has a type the card does not spell (then readers infer types from the files)."""
    if not encoded_schema:
        return None
    import base64

    import pyarrow as pa

    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded_schema)))
    listed = []
    for field in schema:
        dtype = _hf_dtype(field.type)
        if dtype is None:
            return None
        listed.append({"name": field.name, **(dtype if isinstance(dtype, dict) else {"dtype": dtype})})
    return listed


def _dataset_info(name: str, manifest: dict[str, Any], key: str = "files") -> list[dict[str, Any]]:
    found = features((manifest.get("schemas") or {}).get(key))
    if found is None:
        return []
    entries = manifest.get(key, [])
    stored = sum(e.get("bytes", 0) for e in entries)
    # `datasets` ignores a split without `num_bytes` (and then checks no row count). Its
    # `num_bytes` is the split's Arrow size, known only once read: the stored size stands in.
    return [{"config_name": name, "features": found,
             "splits": [{"name": "train", "num_bytes": stored,
                         "num_examples": sum(e.get("rows", 0) for e in entries)}],
             "download_size": stored, "dataset_size": stored}]


def header(root: str, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The card's YAML header for the committed ``manifests`` (oldest first)."""
    latest = manifests[-1]
    fmt = latest.get("output", {}).get("format", "parquet")
    configs = [{**_config(DEFAULT_CONFIG, data_files(latest), fmt), "default": True}]
    configs += [_config(m["version"], data_files(m), fmt) for m in reversed(manifests) if m.get("files")]
    if latest.get("rejected_files"):
        configs.append(_config(REJECTED_CONFIG, data_files(latest, "rejected_files"), fmt))
    meta: dict[str, Any] = {}
    license_id = latest.get("output", {}).get("license")
    meta["license"] = license_id or "unknown"
    langs = languages(root, latest)
    if langs:
        meta["language"] = langs
    meta["size_categories"] = [size_category(latest.get("rows", 0))]
    meta["pretty_name"] = latest.get("recipe_name")
    meta["tags"] = ["recipeflow"]
    meta["configs"] = configs
    # Declared types: JSON lines carry none, and a column null in one file would be typed
    # `null` there; with features, `datasets` reads every file of a config with one schema.
    info = _dataset_info(DEFAULT_CONFIG, latest)
    info += [i for m in reversed(manifests) if m.get("files") for i in _dataset_info(m["version"], m)]
    if latest.get("rejected_files"):
        info += _dataset_info(REJECTED_CONFIG, latest, "rejected_files")
    if info:
        meta["dataset_info"] = info
    return meta


def render(root: str, manifests: list[dict[str, Any]]) -> str:
    """The whole card: YAML header and markdown body."""
    latest = manifests[-1]
    meta = header(root, manifests)
    body = [
        f"# {latest.get('recipe_name')}",
        "",
        f"A dataset built by the recipeflow recipe `{latest.get('recipe_name')}` "
        f"(recipe sha256 `{latest.get('recipe_sha256')}`).",
        "",
        f"- **Latest version**: `{latest['version']}` ({latest.get('created_at')}): "
        f"{latest.get('rows', 0)} documents in {len(latest.get('files', []))} file(s), "
        f"{latest.get('rejected_rows', 0)} rejected documents kept.",
        f"- **License**: {meta['license']}" + ("" if latest.get("output", {}).get("license") else
                                                 " (set `output.license` in the recipe)"),
    ]
    if "language" in meta:
        body.append(f"- **Languages**: {', '.join(meta['language'])}")
    snap = latest.get("snapshot") or {}
    if snap.get("stacked"):
        body.append(
            f"- **Snapshot**: {snap.get('new_rows', 0)} new documents in {snap.get('new_files', 0)} new file(s) "
            f"on top of {snap.get('parent_rows', 0)} documents of parent `{latest.get('parent')}` (files shared)."
        )
    body += [
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        f'latest = load_dataset("<this repo>")                # version {latest["version"]}',
        f'pinned = load_dataset("<this repo>", "{latest["version"]}")',
    ]
    if latest.get("rejected_files"):
        body.append('rejected = load_dataset("<this repo>", "rejected")  # with who rejected each and why')
    body += ["```", "", "## Versions", "", "| version | created | documents | parent |", "|---|---|---:|---|"]
    body += [
        f"| `{m['version']}` | {m.get('created_at')} | {m.get('rows')} | `{m.get('parent')}` |"
        for m in reversed(manifests)
    ]
    body += ["", "## Operators", "", "| node | step | operator | in | out | rejected | drop reasons |",
             "|---|---|---|---:|---:|---:|---|"]
    for op in latest.get("operators", []):
        body.append(
            f"| {op.get('node', '')} | {op['step']} | {op['operator']} | {op.get('docs_in', '')} | "
            f"{op.get('docs_out', '')} | {op.get('rejected', '')} | {_reasons(op)} |"
        )
    body += ["", "## Lineage", ""]
    for inp in latest.get("inputs", []):
        if "dataset" in inp:
            body.append(f"- input `{inp['name']}`: dataset `{inp['dataset']}` version `{inp.get('version')}`")
            continue
        body.append(f"- input `{inp['name']}` ({inp.get('format')}): `{inp.get('path')}`, {len(inp.get('files', []))} file(s)")
        body += [f"  - `{f['url']}` sha256 `{f.get('sha256')}`" for f in inp.get("files", [])[:20]]
        if len(inp.get("files", [])) > 20:
            body.append(f"  - … and {len(inp['files']) - 20} more (see the version's manifest.json)")
    body.append(f"- parent version: `{latest.get('parent')}`")
    body.append(f"- manifest: `versions/{latest['version']}/manifest.json`")
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{text}---\n\n" + "\n".join(body) + "\n"


def _reasons(op: dict[str, Any]) -> str:
    """Drop reasons of one operator entry, where the manifest has them (``reasons``:
    {reason: count}, or a barrier's summary)."""
    reasons = op.get("reasons") or op.get("drop_reasons")
    if isinstance(reasons, dict) and reasons:
        top = sorted(reasons.items(), key=lambda kv: -kv[1] if isinstance(kv[1], int) else 0)[:5]
        return ", ".join(f"{k}: {v}" for k, v in top)
    summary = op.get("summary")
    if isinstance(summary, dict):
        shown = {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}
        return ", ".join(f"{k}: {v}" for k, v in list(shown.items())[:4])
    return ""


def write_card(root: str) -> str | None:
    """Rewrite ``<root>/README.md`` from the committed versions; None when there is none."""
    manifests = versions.committed_manifests(root)
    if not manifests:
        return None
    url = storage.join(root, CARD)
    storage.write_bytes(url, render(root, manifests).encode("utf-8"))
    return url

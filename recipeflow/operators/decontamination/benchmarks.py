"""Benchmark sets for ``decontaminate``: where their items are, how an item's text is made from
its fields, and the files' sha256 (part of the index key, the cache address and the manifest).

An item's text is its ``fields`` in the order given, joined by ``separator`` (a newline by
default), as a model sees a question followed by its choices and answer. A field holding a list
(``choices``) gives one line per element; a dict gives its values in order (for ARC's
``{"text": [...], "label": [...]}`` that is the texts then the labels); a number or bool its
``str``; null an empty string. Every named field must exist in every item: a missing one is an
error naming the benchmark, the file, the line/row and the field.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Literal

import fsspec
from pydantic import Field, field_validator

from recipeflow.operators.base import OperatorParams, local_path, path_field


class BenchmarkError(ValueError):
    """A benchmark set that cannot be used: missing or empty file, missing field. ``param``:
    the benchmark's parameter at fault (``path``, ``fields``, ``id_field``), for the recipe
    error's field path."""

    def __init__(self, message: str, param: str = "path"):
        super().__init__(message)
        self.param = param


# ROOT or ROOT@VERSION of a committed recipeflow dataset -> its data files (None: not a dataset
# root). Operators import nothing above them, so recipeflow.datasets registers it on import.
DatasetResolver = Callable[[str], "list[str] | None"]
_dataset_resolver: DatasetResolver | None = None


def set_dataset_resolver(resolver: DatasetResolver | None) -> None:
    global _dataset_resolver
    _dataset_resolver = resolver


class BenchmarkSpec(OperatorParams):
    path: str | list[str] = path_field(
        description="A file, a glob, a list of files, or a recipeflow dataset (ROOT for its "
        "latest version, ROOT@VERSION for one version: its data files); JSONL (optionally "
        ".gz/.zst) or Parquet.")
    fields: list[str] = Field(
        min_length=1, description="The fields making an item's text, joined in this order.")
    id_field: str | None = Field(
        None, description="The field holding each item's id (default: the item's position, "
        "0-based, over the files in order).")
    format: Literal["auto", "jsonl", "parquet"] = Field(
        "auto", description="auto: by the file name (.parquet is Parquet, anything else JSONL).")
    separator: str = Field("\n", description="Between fields (and list elements).")

    @field_validator("path")
    @classmethod
    def _some_path(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("path: give at least one file")
        return value


@dataclass(frozen=True)
class Benchmark:
    """One benchmark's items, loaded and validated."""

    name: str
    files: tuple[tuple[str, str], ...]  # (path, sha256) in reading order
    item_ids: tuple[str, ...]
    item_texts: tuple[str, ...]

    @property
    def sha256s(self) -> dict[str, str]:
        return dict(self.files)


def resolve_files(name: str, spec: BenchmarkSpec) -> list[str]:
    """The benchmark's files: a list as given, a glob expanded (sorted), a single path."""
    paths = spec.path if isinstance(spec.path, list) else [spec.path]
    out: list[str] = []
    for path in paths:
        fs, local = fsspec.core.url_to_fs(path)
        if any(ch in local for ch in "*?["):
            matches = sorted(fs.glob(local))
            if not matches:
                raise BenchmarkError(f"benchmark {name!r}: no file matches {path!r}")
            protocol = path.split("://", 1)[0] + "://" if "://" in path else ""
            out.extend(protocol + m if protocol and not m.startswith(protocol) else m for m in matches)
        else:
            dataset_files = _dataset_files(name, path)
            if dataset_files is not None:
                out.extend(dataset_files)
                continue
            if not fs.exists(local):
                raise BenchmarkError(f"benchmark {name!r}: file {path!r} does not exist")
            out.append(path)
    return out


def _dataset_files(name: str, path: str) -> list[str] | None:
    """The data files of the dataset version ``path`` names, or None when it names none."""
    if _dataset_resolver is None:
        return None
    try:
        files = _dataset_resolver(path)
    except (FileNotFoundError, LookupError) as exc:
        raise BenchmarkError(f"benchmark {name!r}: {exc}") from None
    if files is not None and not files:
        raise BenchmarkError(f"benchmark {name!r}: dataset {path!r} holds no data files")
    return files


def from_recipe_folder(spec: BenchmarkSpec) -> BenchmarkSpec:
    """``spec`` with relative local paths taken from the recipe's folder while a recipe is
    validated, where they exist there (as the run will read them)."""
    def resolve(path: str) -> str:
        joined = local_path(path)
        return joined if joined != path and os.path.exists(joined.split("@", 1)[0]) else path
    paths = spec.path if isinstance(spec.path, list) else [spec.path]
    resolved = [resolve(p) for p in paths]
    return spec.model_copy(update={"path": resolved if isinstance(spec.path, list) else resolved[0]})


def load_benchmark(name: str, spec: BenchmarkSpec) -> Benchmark:
    files = resolve_files(name, spec)
    stamps = []
    for path in files:
        fs, local = fsspec.core.url_to_fs(path)
        info = fs.info(local)
        stamps.append((path, info.get("size"), info.get("mtime") or info.get("ETag") or info.get("LastModified")))
    return _load(name, spec.model_dump_json(), tuple(stamps))


@functools.lru_cache(maxsize=32)
def _load(name: str, spec_json: str, stamps: tuple) -> Benchmark:
    """Loaded once per process while the files are unchanged (every shard's task constructs
    the operator; the files are read and hashed once)."""
    spec = BenchmarkSpec.model_validate_json(spec_json)
    files, ids, texts = [], [], []
    for path, _, _ in stamps:
        with fsspec.open(path, "rb") as f:
            data = f.read()
        files.append((path, hashlib.sha256(data).hexdigest()))
        rows = _rows(name, path, data, spec)
        before = len(texts)
        for position, row in rows:
            texts.append(item_text(row, spec, name, path, position))
            if spec.id_field is not None:
                ids.append(str(_field(row, spec.id_field, name, path, position, "id_field")))
            else:
                ids.append(str(len(ids)))
        if len(texts) == before:
            raise BenchmarkError(f"benchmark {name!r}: file {path} holds no items")
    if not any(t.strip() for t in texts):
        raise BenchmarkError(f"benchmark {name!r}: the fields {', '.join(spec.fields)} are empty in every "
                             f"item of {', '.join(p for p, _, _ in stamps)}: check `fields`", "fields")
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise BenchmarkError(f"benchmark {name!r}: id_field {spec.id_field!r} is not unique "
                             f"(e.g. {dup!r} appears more than once)", "id_field")
    return Benchmark(name, tuple(files), tuple(ids), tuple(texts))


def _is_parquet(path: str, spec: BenchmarkSpec) -> bool:
    if spec.format != "auto":
        return spec.format == "parquet"
    return path.lower().endswith((".parquet", ".pq"))


def _rows(name: str, path: str, data: bytes, spec: BenchmarkSpec) -> list[tuple[str, dict]]:
    """(position for error messages, record) of every item of one file."""
    if not data:
        raise BenchmarkError(f"benchmark {name!r}: file {path} is empty")
    if _is_parquet(path, spec):
        import io

        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        needed = list(spec.fields) + ([spec.id_field] if spec.id_field else [])
        for field in needed:
            if field not in table.column_names:
                raise BenchmarkError(
                    f"benchmark {name!r}: file {path} has no field {field!r} (its columns: "
                    f"{', '.join(table.column_names)})", "fields" if field in spec.fields else "id_field")
        return [(f"row {i}", r) for i, r in enumerate(table.select(needed).to_pylist())]
    compression = _compression(path)
    lines = _decompressed(data, compression).decode("utf-8").splitlines()
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise BenchmarkError(f"benchmark {name!r}: file {path} line {number} is not JSON ({e})") from None
        if not isinstance(record, dict):
            raise BenchmarkError(f"benchmark {name!r}: file {path} line {number} is not a JSON object")
        out.append((f"line {number}", record))
    return out


def _compression(path: str) -> str | None:
    lower = path.lower()
    if lower.endswith(".gz"):
        return "gzip"
    if lower.endswith(".zst"):
        return "zstd"
    return None


def _decompressed(data: bytes, compression: str | None) -> bytes:
    if compression == "gzip":
        import gzip

        return gzip.decompress(data)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _field(record: dict, field: str, name: str, path: str, position: str, param: str = "fields") -> Any:
    if field not in record:
        raise BenchmarkError(
            f"benchmark {name!r}: file {path} {position} has no field {field!r} (its fields: "
            f"{', '.join(record) or 'none'}); fix `fields`/`id_field` of benchmark {name!r}",
            param)
    return record[field]


def item_text(record: dict, spec: BenchmarkSpec, name: str = "?", path: str = "?", position: str = "?") -> str:
    parts = [_render(_field(record, f, name, path, position), spec.separator) for f in spec.fields]
    return spec.separator.join(p for p in parts if p)


def _render(value: Any, separator: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return separator.join(p for p in (_render(v, separator) for v in value) if p)
    return str(value)


def file_sha256_summary(benchmarks: dict[str, Benchmark]) -> dict[str, dict[str, str]]:
    """benchmark -> {file: sha256}, for provenance and the index key."""
    return {name: b.sha256s for name, b in sorted(benchmarks.items())}



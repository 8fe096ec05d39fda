"""What a committed version publishes: the columns chosen by ``output.columns``, input
provenance relative to each input's declared root, one schema per split, and — for a refresh
that deduplicates against history — the parent's files shared, not copied.

One schema per split: Hugging Face ``datasets``, Polars and DuckDB read a split's files as one
table and refuse (or silently drop columns of) files whose columns differ. Rejected files
differ by nature (each step adds its statistics), and a new input may bring a metadata field:
every part is cast to the union schema of its split, missing columns as nulls. A snapshot's
new files take the parent's schema when it holds all their columns; when they bring new ones,
the parent's files cannot be changed in place (other versions list them), so this version
writes its own copies of them with the union schema (marked ``rewritten_from``).
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import fsspec

from recipeflow.datasets import version_reader, versions
from recipeflow.engine import spill_layout
from recipeflow.io import readers, storage, writers
from recipeflow.operators import document as doc
from recipeflow.recipe.models import OutputSpec

# Columns a rejected document always keeps, whatever ``output.columns`` says: why it was rejected.
_REJECTION_COLUMNS = frozenset(doc.REJECTION_COLUMNS)


@dataclass(frozen=True)
class Provenance:
    """How ``input_file`` values are published: per input name, the declared root that local
    paths are made relative to (remote URLs stay as they are: they name no machine)."""

    roots: dict[str, str]

    def relative(self, input_name: str | None, url: str | None) -> str | None:
        if url is None or not storage.is_local(url):
            return url
        root = self.roots.get(input_name or "")
        if root is None or not storage.is_local(root):
            return url.rsplit("/", 1)[-1]
        return readers.relative_path(storage.absolute(url), storage.absolute(root))


def input_roots(recipe: Any, input_datasets: dict[str, versions.DatasetInput]) -> Provenance:
    """The declared root of every input: a dataset's root, else the non-glob base of its path."""
    roots = {}
    for name, spec in recipe.inputs.items():
        if name in input_datasets:
            roots[name] = input_datasets[name].root
        else:
            try:
                roots[name] = readers.input_root(spec.path)
            except (FileNotFoundError, ValueError, OSError):
                roots[name] = spec.path
    return Provenance(roots)


def published_columns(table: pa.Table, output: OutputSpec, rejected: bool, provenance: Provenance) -> pa.Table:
    """Working columns (``__``) out, ``output.columns`` applied, ``input_file`` made relative."""
    names = [n for n in table.column_names if not n.startswith("__")]
    if output.columns is not None:
        names = [n for n in names if output.columns.selects(n) or (rejected and n in _REJECTION_COLUMNS)]
    table = table.select(names)
    if doc.INPUT_FILE in names and len(table):
        inputs = table.column(doc.INPUT_NAME).to_pylist() if doc.INPUT_NAME in names else [None] * len(table)
        files = table.column(doc.INPUT_FILE).to_pylist()
        # A shard's documents come from one file or a few: each (input, file) is made relative once.
        made = {pair: provenance.relative(*pair) for pair in dict.fromkeys(zip(inputs, files))}
        relative = [made[pair] for pair in zip(inputs, files)]
        table = table.set_column(names.index(doc.INPUT_FILE), doc.INPUT_FILE, pa.array(relative, pa.string()))
    return table


def union_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema holding every column (id, text first), with Arrow's permissive promotion;
    a column whose types cannot be reconciled becomes a string (JSON-encoded values)."""
    schemas = [s for s in schemas if s is not None]
    if not schemas:
        return pa.schema([(doc.ID, pa.string()), (doc.TEXT, pa.string())])
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        fields: dict[str, pa.Field] = {}
        for schema in schemas:
            for f in schema:
                if f.name in fields and not fields[f.name].type.equals(f.type):
                    try:
                        pa.unify_schemas([pa.schema([fields[f.name]]), pa.schema([f])], promote_options="permissive")
                    except (pa.ArrowInvalid, pa.ArrowTypeError):
                        fields[f.name] = pa.field(f.name, pa.string())
                        continue
                fields.setdefault(f.name, f)
        unified = pa.unify_schemas([pa.schema([f]) for f in fields.values()], promote_options="permissive")
    first = [n for n in (doc.ID, doc.TEXT) if n in unified.names]
    return pa.schema([unified.field(n) for n in first] + [f for f in unified if f.name not in first])


def cast_to(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones null, types cast (a type that
    does not cast is JSON-encoded to strings, as :func:`writers.concat` does)."""
    columns = []
    for f in schema:
        if f.name not in table.column_names:
            columns.append(pa.nulls(len(table), f.type))
            continue
        column = table.column(f.name)
        if column.type.equals(f.type):
            columns.append(column)
            continue
        try:
            columns.append(column.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            encoded = [None if v is None else json.dumps(v, default=str, ensure_ascii=False) for v in column.to_pylist()]
            columns.append(pa.array(encoded, pa.string()).cast(f.type))
    return pa.table(columns, schema=schema)


def _footer(path: str) -> tuple[int, pa.Schema]:
    """Rows and Arrow schema of a stage output (a file or a part of a pack), from its footer."""
    return writers.row_count(path), writers.parquet_footer(path).schema.to_arrow_schema()


# Stage outputs' footers read at once: thousands of small shards make this latency-bound.
_FOOTER_THREADS = 8


@dataclass(frozen=True)
class Split:
    """One split's files of a version, in manifest order (inherited first, then new)."""

    entries: list[dict[str, Any]]
    schema: pa.Schema | None = None  # every file of the split has it (None: no file, or Megatron)


def write_split(
    paths: list[str],
    folder: str,
    layout: OutputSpec,
    select: Callable[[pa.Table], pa.Table],
    version: str,
    root: str,
    inherited: list[dict[str, Any]],
    parent: str | None,
    exclude_ids: pa.Array | None = None,
    parent_encoded_schema: str | None = None,
    vocab_size: int | None = None,
) -> Split:
    """Write stage outputs ``paths`` as this version's parts of one split, laid out as
    ``layout`` says (:mod:`recipeflow.engine.output_layout`), all with one schema, after the
    ``inherited`` entries of the parent's snapshot (shared, or rewritten when the new parts
    bring columns the parent's files lack). Rows whose id is in ``exclude_ids`` are left out of
    the new parts. Megatron files hold token ids, not columns: they are always shared."""
    paths = writers.coalesce_parts(paths)  # a pack's consecutive shards: read as one
    with ThreadPoolExecutor(_FOOTER_THREADS) as pool:
        footers = list(pool.map(_footer, paths))
    sources = [p for p, (rows, _) in zip(paths, footers) if rows > 0]
    fmt = layout.format
    parent_schema = None
    if fmt == "megatron":
        schema = None
    else:
        schemas = [select(writers.empty_table(arrow)).schema for rows, arrow in footers if rows > 0]
        if inherited and fmt == "parquet":
            with fsspec.open(versions.entry_url(root, parent or version, inherited[0]), "rb") as f:
                parent_schema = pq.ParquetFile(f).schema_arrow
        elif inherited and parent_encoded_schema:
            # JSON lines hold no types: the parent's schema is the one its manifest recorded, and
            # the new parts must fit it (a type JSON cannot tell apart would need a rebuild).
            parent_schema = decode_schema(parent_encoded_schema)
        schema = union_schema(([parent_schema] if parent_schema is not None else []) + schemas)
    version_folder = folder.rsplit("/", 1)[0]
    entries: list[dict[str, Any]] = []
    rewritten = 0
    shared = schema is None or parent_schema is None or parent_schema.equals(schema)
    for entry in inherited:
        owner = entry.get("version") or parent
        if shared:
            entries.append({**{k: v for k, v in entry.items() if k != "new"}, "version": owner, "new": False})
            continue
        table = cast_to(writers.read_table(versions.entry_url(root, owner or version, entry)), schema)
        done = writers.write_table(table, storage.join(folder, f"part-{rewritten:05d}.{_EXTENSIONS[fmt]}"), fmt)
        rewritten += 1
        kept = {k: v for k, v in entry.items() if k in ("tokens", "partition")}
        entries.append({**kept, **_entry(done, version_folder, version), "new": False,
                        "rewritten_from": versions.entry_repo_path(owner or version, entry)})

    def prepare(table: pa.Table) -> pa.Table:
        table = select(table)
        if exclude_ids is not None and len(exclude_ids) and len(table):
            table = table.filter(pc.invert(pc.is_in(table.column(doc.ID), value_set=exclude_ids)))
        return table if schema is None else cast_to(table, schema)

    laid = spill_layout.write_data(sources, folder, layout, vocab_size, prepare=prepare, first_number=rewritten)
    entries += [{**f.entry(version_folder), "version": version, "new": True} for f in laid]
    return Split(entries, schema if entries else None)


_EXTENSIONS = {"parquet": "parquet", "jsonl.gz": "jsonl.gz"}


def encode_schema(schema: pa.Schema | None) -> str | None:
    """An Arrow schema as text for a manifest (the exact types, which JSON lines do not keep)."""
    return None if schema is None else base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def decode_schema(encoded: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded)))


def _entry(f: writers.WrittenFile, version_folder: str, version: str) -> dict[str, Any]:
    path = f.path[len(version_folder) + 1:] if f.path.startswith(version_folder) else f.path
    return {"path": path, "version": version, "rows": f.rows, "bytes": f.bytes, "sha256": f.sha256}


def snapshot_ids(root: str, manifest: dict[str, Any]) -> pa.Array:
    """Every id a version holds, published or rejected (its id columns only)."""
    fmt = manifest.get("output", {}).get("format", "parquet")
    arrays = []
    for key in ("files", "rejected_files"):
        for e in manifest.get(key, []):
            if fmt == "megatron" and key == "files":  # token ids: the ids are in the documents file
                e = {**e, "path": e["documents"]["path"]}
            url = versions.entry_url(root, manifest["version"], e)
            if fmt != "jsonl.gz":  # Megatron's rejected documents are Parquet
                arrays.append(writers.read_table(url, columns=[doc.ID]).column(doc.ID).combine_chunks())
            else:
                ids = [str(row.get(doc.ID)) for row in version_reader.iter_jsonl_rows(url)]
                arrays.append(pa.array(ids, pa.string()))
    return pa.concat_arrays([a.cast(pa.string()) for a in arrays]) if arrays else pa.array([], pa.string())

"""``recipeflow trace``: where one document of a version came from and what happened to it.

The document is looked up by id in the version's data files, then in its rejected files;
for Parquet only the ``id`` column is read until the row is found, then only the row group
holding it. Its path through the recipe graph (input → nodes → output) comes from the
manifest's resolved recipe, its steps and counts from the manifest's operators.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import fsspec
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recipeflow.datasets import version_reader
from recipeflow.datasets.version_reader import InspectError, Version
from recipeflow.operators import document as doc

DATA = "data"
REJECTED = "rejected"
PARENT_ID = "parent_id"  # a generated document names the document it was made from
REJECTED_SUFFIX = ".rejected"
READ_STEP_PREFIX = "read:"
READ_OPERATOR = "read"
# Graphs are small, but unions of unions multiply paths: enough to show, not to flood.
MAX_PATHS = 20
TEXT_PREVIEW = 200

PASSED = "passed"
REJECTED_HERE = "rejected"
ONE_OF_REJECTED = "passed, or rejected it"  # the node's rejected stream went on; which step is unknown

_NOT_METADATA = frozenset(
    (doc.ID, doc.TEXT, PARENT_ID, *doc.LINEAGE_COLUMNS, *doc.REJECTION_COLUMNS)
)


class UnknownDocument(InspectError):
    """No row of the version has this id."""


@dataclass(frozen=True)
class FoundRow:
    """One row with the id: in which kind of file, which file, its position, its values."""

    where: str  # DATA or REJECTED
    file: str  # path relative to the version folder
    row: int
    values: dict[str, Any]
    version: str = ""  # the version that wrote the file (a snapshot's file may be its parent's)


@dataclass
class DocumentTrace:
    root: str
    version: str
    id: str
    found_in: str  # DATA or REJECTED
    file: str
    row: int
    copies: int  # rows with this id in the data files (1 for a rejected document)
    text_length: int | None
    text_preview: str | None
    parent_id: Any
    input: dict[str, Any]
    rejection: dict[str, Any] | None
    earlier_rejections: list[dict[str, Any]]
    statistics: dict[str, Any]
    metadata: dict[str, Any]
    paths: list[list[dict[str, Any]]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def trace_document(root: str, doc_id: str, version: str | None = None) -> DocumentTrace:
    """Trace ``doc_id`` in ``version`` (default: latest) of the dataset at ``root``."""
    opened = version_reader.open_version(root, version)
    kept = list(find_rows(opened, DATA, doc_id))
    rejected = list(find_rows(opened, REJECTED, doc_id))
    if not kept and not rejected:
        raise UnknownDocument(_not_found_message(opened, doc_id))
    # Rejected files are written node by node in graph order: the last rejection is the latest.
    main = kept[0] if kept else rejected[-1]
    earlier = rejected if kept else rejected[:-1]
    # Several rejected rows are one document's rejections along its path, not copies.
    return _build_trace(opened, main, copies=len(kept) or 1, earlier=earlier)


def _build_trace(version: Version, found: FoundRow, copies: int, earlier: list[FoundRow]) -> DocumentTrace:
    values = found.values
    # The run that wrote the file says where the document came from: for a file a snapshot
    # shares with its parent, that is the parent's (or an earlier) manifest.
    writer = version.manifest
    if found.version and found.version != version.id:
        try:
            writer = version_reader.open_version(version.root, found.version).manifest
        except version_reader.UnknownVersion:
            pass  # the writer was deleted by retention (its files kept): this manifest it is
    text = values.get(doc.TEXT)
    rejection = _rejection(values) if found.where == REJECTED else None
    earlier_rejections = [_rejection(r.values) for r in earlier]
    return DocumentTrace(
        root=version.root,
        version=version.id,
        id=str(values.get(doc.ID)),
        found_in=found.where,
        file=found.file,
        row=found.row,
        copies=copies,
        text_length=len(text) if isinstance(text, str) else None,
        text_preview=text[:TEXT_PREVIEW] if isinstance(text, str) else None,
        parent_id=values.get(PARENT_ID),
        input=input_of(writer, values),
        rejection=rejection,
        earlier_rejections=earlier_rejections,
        statistics={k: v for k, v in values.items() if k.startswith(doc.STAT_PREFIX)},
        metadata={k: v for k, v in values.items() if k not in _NOT_METADATA and not k.startswith(doc.STAT_PREFIX)},
        paths=document_paths(writer, values, rejection, earlier_rejections),
    )


def _rejection(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "rejected_by": values.get(doc.REJECTED_BY),
        "rejected_at": values.get(doc.REJECTED_AT),
        "reason": values.get(doc.REJECT_REASON),
        "statistic": values.get(doc.REJECT_STATISTIC),
        "value": values.get(doc.REJECT_VALUE),
        "detail": values.get(doc.REJECT_DETAIL),
    }


def _not_found_message(version: Version, doc_id: str) -> str:
    data = [f["path"] for f in version.manifest.get("files", [])]
    rejected = [f["path"] for f in version.manifest.get("rejected_files", [])]
    message = (
        f"no document with id {doc_id!r} in version {version.id} of {version.root}: "
        f"looked in {len(data)} data file(s) ({', '.join(data) or 'none'}) and "
        f"{len(rejected)} rejected file(s) ({', '.join(rejected) or 'none'})"
    )
    if not version.manifest.get("output", {}).get("keep_rejected", True):
        message += "; this version keeps no rejected documents (output.keep_rejected: false)"
    return message


# -- finding rows by id -----------------------------------------------------------------------


def find_rows(version: Version, where: str, doc_id: str) -> Iterator[FoundRow]:
    """Every row with ``doc_id`` in the version's data (or rejected) files, in file order."""
    entries = version.manifest.get("files" if where == DATA else "rejected_files", [])
    for entry in entries:
        url = version.file_url(entry)
        rows = _parquet_rows(url, doc_id) if version.format == "parquet" else _jsonl_rows(url, doc_id)
        for position, values in rows:
            yield FoundRow(where, entry["path"], position, values, version.file_version(entry))


def _parquet_rows(url: str, doc_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Read the ``id`` column alone; then, per match, only the row group that holds it."""
    with fsspec.open(url, "rb") as f:
        parquet = pq.ParquetFile(f)
        ids = parquet.read(columns=[doc.ID]).column(doc.ID)
        matches = pc.indices_nonzero(pc.fill_null(pc.equal(ids, doc_id), False)).to_pylist()
        for position in matches:
            group, offset = _row_group_of(parquet.metadata, position)
            yield position, parquet.read_row_group(group).slice(offset, 1).to_pylist()[0]


def _row_group_of(metadata: pq.FileMetaData, position: int) -> tuple[int, int]:
    """(row group, row within it) of the file's row ``position``."""
    start = 0
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        if position < start + rows:
            return group, position - start
        start += rows
    raise IndexError(f"row {position} is past the end of the file ({start} rows)")


def _jsonl_rows(url: str, doc_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for position, row in enumerate(version_reader.iter_jsonl_rows(url)):
        if str(row.get(doc.ID)) == doc_id:
            yield position, row


# -- input ------------------------------------------------------------------------------------


def input_of(manifest: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The document's input name, file and record, with that file's sha256 and size from the
    manifest (and the dataset version it belongs to, for a dataset input)."""
    name, url = values.get(doc.INPUT_NAME), values.get(doc.INPUT_FILE)
    found: dict[str, Any] = {"name": name, "file": url, "record": values.get(doc.INPUT_RECORD),
                             "sha256": None, "size": None}
    for entry in manifest.get("inputs", []):
        if entry.get("name") != name:
            continue
        for key in ("dataset", "version"):
            if key in entry:
                found[key] = entry[key]
        for f in entry.get("files", []):
            if f.get("url") == url:
                found.update(sha256=f.get("sha256"), size=f.get("size"))
    return found


# -- path through the recipe graph ------------------------------------------------------------


def document_paths(
    manifest: dict[str, Any],
    values: dict[str, Any],
    rejection: dict[str, Any] | None,
    earlier: list[dict[str, Any]],
) -> list[list[dict[str, Any]]]:
    """The ways the document can have gone from its input to where it was found, each a list
    of hops ``{node, read_from, steps: [{step, operator, kind, status}]}``.

    A kept document ends at the output node, every step passed; a rejected one ends at the
    node of the step that rejected it. A hop whose node's rejected stream the next node read
    rejected it at one of its steps (which one is known when that rejection was kept too).
    """
    nodes = manifest.get("recipe", {}).get("nodes", {})
    input_name = values.get(doc.INPUT_NAME)
    step_nodes = {op["step"]: op.get("node") for op in manifest.get("operators", [])}
    target = _final_node(manifest, rejection, input_name, step_nodes)
    if target not in nodes or input_name is None:
        return []
    candidates = node_paths(nodes, target, input_name)
    known = {step_nodes.get(r["rejected_at"]): r["rejected_at"] for r in earlier if r.get("rejected_at")}
    consistent = [p for p in candidates if _rejecting_nodes(p) == set(known)]
    chosen = consistent or candidates
    final_rejected_at = _rejected_step(rejection, input_name)
    return [_describe_path(p, manifest, known, final_rejected_at) for p in chosen]


def _final_node(
    manifest: dict[str, Any], rejection: dict[str, Any] | None, input_name: str | None, step_nodes: dict[str, Any]
) -> str | None:
    if rejection is None:
        return manifest.get("node")
    return step_nodes.get(_rejected_step(rejection, input_name) or "")


def _rejected_step(rejection: dict[str, Any] | None, input_name: str | None) -> str | None:
    """The step that rejected it; a record the reader could not read has none: its read step."""
    if rejection is None:
        return None
    if rejection.get("rejected_at"):
        return rejection["rejected_at"]
    if rejection.get("rejected_by") == READ_OPERATOR and input_name:
        return READ_STEP_PREFIX + input_name
    return None


def node_paths(nodes: dict[str, Any], target: str, input_name: str) -> list[list[tuple[str, str]]]:
    """Every chain of (node, what it read) from ``input_name`` to ``target`` (at most MAX_PATHS)."""
    paths: list[list[tuple[str, str]]] = []
    for source in nodes.get(target, {}).get("from", []):
        if source == input_name:
            paths.append([(target, source)])
            continue
        upstream = source.removesuffix(REJECTED_SUFFIX)
        if upstream in nodes:
            paths.extend(p + [(target, source)] for p in node_paths(nodes, upstream, input_name))
    return paths[:MAX_PATHS]


def _rejecting_nodes(path: list[tuple[str, str]]) -> set[str]:
    """Nodes whose rejected stream the next hop read: they rejected the document."""
    return {node for (node, _), (_, read) in zip(path, path[1:]) if read.endswith(REJECTED_SUFFIX)}


def _describe_path(
    path: list[tuple[str, str]],
    manifest: dict[str, Any],
    known_rejections: dict[str | None, str],
    final_rejected_at: str | None,
) -> list[dict[str, Any]]:
    """Each hop with its steps: the last ends where the document was found (or rejected); an
    earlier one that rejected it says at which step when that rejection was kept."""
    rejecting = _rejecting_nodes(path)
    hops = []
    for index, (node, read_from) in enumerate(path):
        last = index == len(path) - 1
        if last:
            rejected_at, unknown = final_rejected_at, False
        else:
            rejected_at, unknown = known_rejections.get(node), node in rejecting and node not in known_rejections
        steps = _node_steps(manifest, node, read_from, rejected_at, unknown)
        hops.append({"node": node, "read_from": read_from, "steps": steps})
    return hops


def _node_steps(
    manifest: dict[str, Any], node: str, read_from: str, rejected_at: str | None, unknown: bool
) -> list[dict[str, Any]]:
    """The node's steps the document met, in order, each with what it did to it."""
    steps = []
    for op in manifest.get("operators", []):
        if op.get("node") != node:
            continue
        if op["step"].startswith(READ_STEP_PREFIX) and op["step"] != READ_STEP_PREFIX + read_from:
            continue  # the reader of another input
        status = ONE_OF_REJECTED if unknown else (REJECTED_HERE if op["step"] == rejected_at else PASSED)
        steps.append({"step": op["step"], "operator": op["operator"], "kind": op.get("kind"), "status": status})
        if status == REJECTED_HERE:
            break  # later steps never saw it
    return steps


# -- text -------------------------------------------------------------------------------------


def render_text(trace: DocumentTrace) -> str:
    """The trace for a terminal."""
    state = "kept" if trace.found_in == DATA else "rejected"
    copies = f" ({trace.copies} rows have this id)" if trace.copies > 1 else ""
    lines = [
        f"document {trace.id} in version {trace.version} of {trace.root}: {state}",
        f"  found in {trace.file}, row {trace.row}{copies}",
        *_input_lines(trace.input),
    ]
    if trace.parent_id is not None:
        lines.append(f"  generated from document {trace.parent_id}")
    if trace.rejection:
        lines.append("  " + _rejection_line(trace.rejection))
    for r in trace.earlier_rejections:
        lines.append("  earlier: " + _rejection_line(r) + ", then read from the rejected stream")
    lines.extend(_path_lines(trace.paths))
    if trace.statistics:
        stats = (f"{k.removeprefix(doc.STAT_PREFIX)}={v}" for k, v in trace.statistics.items())
        lines.append("  statistics: " + ", ".join(stats))
    if trace.text_length is not None:
        preview = (trace.text_preview or "").replace("\n", " ")
        cut = "…" if trace.text_length > TEXT_PREVIEW else ""
        lines.append(f"  text ({trace.text_length} characters): {preview}{cut}")
    return "\n".join(lines)


def _input_lines(inp: dict[str, Any]) -> list[str]:
    size = f", {inp['size']} bytes" if inp["size"] is not None else ""
    lines = [
        f"  input {inp['name']}: {inp['file']} record {inp['record']}",
        f"    file sha256 {inp['sha256'] or '(not in the manifest)'}{size}",
    ]
    if "dataset" in inp:
        lines.append(f"    from dataset {inp['dataset']} version {inp.get('version')}")
    return lines


def _path_lines(paths: list[list[dict[str, Any]]]) -> list[str]:
    lines = []
    for index, path in enumerate(paths):
        if len(paths) > 1:
            lines.append(f"  path {index + 1} of {len(paths)} (the graph has several ways from its input):")
        for hop in path:
            lines.append(f"  node {hop['node']} (from {hop['read_from']})")
            lines.extend(f"    {s['step']:<34} {s['operator']:<24} {s['status']}" for s in hop["steps"])
    return lines


def _rejection_line(r: dict[str, Any]) -> str:
    line = f"rejected by {r['rejected_by']} at {r['rejected_at'] or 'reading'}: {r['reason']}"
    if r.get("statistic"):
        line += f" ({r['statistic']} = {r['value']})"
    if r.get("detail"):
        line += f"; {r['detail']}"
    return line

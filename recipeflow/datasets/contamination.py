"""``recipeflow contamination ROOT[@VERSION] --benchmarks ...``: check an already committed
version against benchmark sets without running its recipe again.

The version's documents go through ``decontaminate`` in annotate mode (nothing is written or
dropped) and its per-benchmark report is summed: items, items hit and documents hit, by exact
n-gram overlap and by paraphrase (when ``paraphrase_check`` is configured).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from recipeflow.datasets.version_reader import InspectError, iter_row_batches, open_version, split_ref
from recipeflow.operators import document as doc
from recipeflow.operators.decontaminate import Decontaminate, merge_reports

BATCH_ROWS = 2_000  # documents per batch: bounded memory whatever the version's size


class ContaminationSpecError(ValueError):
    """The ``--benchmarks`` argument cannot be used: say what was wrong and what is expected."""


@dataclass(frozen=True)
class ContaminationReport:
    dataset: str
    version: str
    documents: int
    benchmarks: dict[str, dict[str, int]]  # merge_reports' table
    params: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "version": self.version, "documents": self.documents,
                "benchmarks": self.benchmarks, "params": self.params}


def parse_benchmarks(value: str) -> dict[str, Any]:
    """``decontaminate`` parameters from ``--benchmarks``: a YAML file or inline YAML/JSON,
    holding either the operator's parameters (``{benchmarks: {...}, n: 13, ...}``) or just the
    benchmarks mapping (``{mmlu: {path: ..., fields: [...]}}``). Relative benchmark paths in a
    file are taken from the file's folder."""
    base = None
    if os.path.isfile(value):
        base = os.path.dirname(os.path.abspath(value))
        with open(value, encoding="utf-8") as f:
            text = f.read()
    else:
        text = value
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContaminationSpecError(f"--benchmarks: neither a file nor valid inline YAML ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise ContaminationSpecError(
            "--benchmarks: expected a YAML file or inline mapping, e.g. "
            "'{mmlu: {path: mmlu.jsonl, fields: [question, choices, answer]}}'")
    params = dict(data) if "benchmarks" in data else {"benchmarks": data}
    if base is not None and isinstance(params["benchmarks"], dict):
        params["benchmarks"] = {name: _from_folder(spec, base) for name, spec in params["benchmarks"].items()}
    return params


def _from_folder(spec: Any, base: str) -> Any:
    if not isinstance(spec, dict) or "path" not in spec:
        return spec
    def resolve(path: Any) -> Any:
        if not isinstance(path, str) or "://" in path or os.path.isabs(os.path.expanduser(path)):
            return path
        return os.path.join(base, path)
    path = spec["path"]
    return {**spec, "path": [resolve(p) for p in path] if isinstance(path, list) else resolve(path)}


def check_version(ref: str, params: dict[str, Any]) -> ContaminationReport:
    """Run ``decontaminate`` (annotate mode) over the documents of the version ``ref`` names."""
    root, name = split_ref(ref)
    version = open_version(root, name)
    params = {**params, "mode": "annotate"}
    op = Decontaminate(params)
    documents = 0
    for batch in _text_batches(version):
        op.process(batch)
        documents += len(batch)
    return ContaminationReport(version.root, version.id, documents, merge_reports([op.take_report()]),
                               {k: v for k, v in params.items() if k != "mode"})


def _text_batches(version: Any) -> Iterator[pa.Table]:
    files = version.manifest.get("files") or []
    if not files:
        raise InspectError(f"version {version.id} of {version.root} holds no data files")
    for entry in files:
        url = version.file_url(entry)
        if version.format == "parquet":
            with fsspec.open(url, "rb") as f:
                for part in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=[doc.ID, doc.TEXT]):
                    yield pa.Table.from_batches([part])
            continue
        for rows in iter_row_batches(url, version.format):
            yield pa.table({doc.ID: [str(r.get(doc.ID)) for r in rows],
                            doc.TEXT: [r.get(doc.TEXT) or "" for r in rows]})


def report_rows(summary: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """The per-benchmark table as rows (terminal, artifacts)."""
    return [{"benchmark": name, **counts} for name, counts in summary.items()]

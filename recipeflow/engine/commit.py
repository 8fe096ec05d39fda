"""Commit one output of a run as a new dataset version: data files, rejected documents, then
the manifest, last."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


import recipeflow
from recipeflow.engine import history, operator_hooks, output_layout, snapshot
from recipeflow.io import readers
from recipeflow.io import storage, writers
from recipeflow.datasets import card, versions
from recipeflow.engine.shard_input import StageOutput
from recipeflow.engine.planner import NodePlan, Plan
from recipeflow.recipe.models import OutputSpec, Recipe

DATA_DIR = "data"
REJECTED_DIR = "rejected"
MANIFEST_FORMAT = "recipeflow.dataset/1"


@dataclass
class NodeResult:
    """What one node's stages produced, shard by shard."""

    plan: NodePlan
    stages: list[list[StageOutput]] = field(default_factory=list)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)  # barrier step -> summary
    cache_entries: set[str] = field(default_factory=set)  # "<kind>/<address>" used by this node
    history: list[history.HistoryUse] = field(default_factory=list)  # scope: history barriers

    def use_cache_files(self, paths: list[str]) -> None:
        """Note the cache entries (``<work>/<kind>/<address>/<file>``) that ``paths`` live in."""
        self.cache_entries.update("/".join(p.split("/")[-3:-1]) for p in paths)

    @property
    def final(self) -> list[StageOutput]:
        return self.stages[-1] if self.stages else []

    def counts(self) -> list[dict[str, Any]]:
        """Documents in and out per step, summed over shards, in recipe order."""
        totals: dict[str, dict[str, Any]] = {}
        for outputs in self.stages:
            for output in outputs:
                for c in output.counts:
                    row = totals.setdefault(
                        c["step"],
                        {"node": self.plan.name, "step": c["step"], "operator": c["operator"], "docs_in": 0, "docs_out": 0},
                    )
                    row["docs_in"] += c["docs_in"]
                    row["docs_out"] += c["docs_out"]
                    if c.get("docs_added"):  # a generator's new documents beside its input's
                        row["docs_added"] = row.get("docs_added", 0) + c["docs_added"]
                    for side in ("tokens_in", "tokens_out"):  # once documents carry n_tokens
                        if c.get(side) is not None:
                            row[side] = row.get(side, 0) + c[side]
                    reasons = row.setdefault("reasons", {})
                    for reason, n in (c.get("reasons") or {}).items():
                        reasons[reason] = reasons.get(reason, 0) + n
                    if c.get("overwrote"):  # input fields the operator wrote over
                        row["overwrote"] = sorted(set(row.get("overwrote", [])) | set(c["overwrote"]))
        for row in totals.values():
            row["rejected"] = row["docs_in"] + row.get("docs_added", 0) - row["docs_out"]
            if row["operator"] == "route" and self.plan.route is not None:  # which values it took
                row["route"] = self.plan.route.model_dump(mode="json", exclude_none=True)
            # Most documents first; equal counts by name, so manifests are reproducible.
            row["reasons"] = dict(sorted(row["reasons"].items(), key=lambda kv: (-kv[1], kv[0])))
        return list(totals.values())


def _reported(result: NodeResult, ref: Any) -> Any | None:
    """A reporting operator's summary: every shard's report merged (decontaminate's table)."""
    reports = [o.reports[ref.step] for outputs in result.stages for o in outputs if ref.step in o.reports]
    return operator_hooks.merged_report(ref, reports)


def _vocab_size(refs: Any, nodes: list[str]) -> int | None:
    """The vocabulary of the last tokenize step of ``nodes`` (Megatron's dtype follows it)."""
    sizes = [
        ref.provenance.get("vocab_size")
        for ref in refs
        if ref.node in nodes and ref.name == "tokenize" and ref.provenance
    ]
    return sizes[-1] if sizes else None


def _dataset_keys(dataset: versions.DatasetInput | None) -> dict[str, Any]:
    """For an input that is a dataset: which one, and the exact version read."""
    return {} if dataset is None else {"dataset": dataset.root, "version": dataset.version}


def commit_output(
    *,
    recipe: Recipe,
    plan: Plan,
    node: str,
    output: OutputSpec,
    results: dict[str, NodeResult],
    input_files: dict[str, list[readers.FileScan]],
    run_info: dict[str, Any],
    input_datasets: dict[str, versions.DatasetInput] | None = None,
) -> dict[str, Any]:
    """Write the version of ``output`` (whose path is absolute) and return its manifest."""
    root = output.path
    version = versions.new_version_id()
    folder = versions.version_path(root, version)
    lineage_nodes = recipe.ancestors(node)
    parent = versions.latest_version(root)
    # A refresh deduplicated against the dataset's history publishes only what is new: its
    # version is the parent's snapshot plus these files. Any other run rebuilds the whole.
    stacked = parent is not None and any(
        use.target.root == root for name in lineage_nodes for use in results[name].history
    )
    parent_manifest = versions.read_manifest(root, parent) if stacked else {}
    if stacked and parent_manifest.get("output", {}).get("format", "parquet") != output.format:
        raise ValueError(
            f"output.format is {output.format!r} but version {parent} of {root} is "
            f"{parent_manifest['output']['format']!r}: a refresh adds files to its parent's snapshot, "
            "so both must have one format. Keep the format, or write to a new dataset root."
        )
    provenance = snapshot.input_roots(recipe, input_datasets or {})
    step_refs = {ref.step: ref for n in plan.nodes for s in n.stages for ref in ((s.barrier,) if s.barrier else ()) + s.ops}
    # Rejected documents are plain parts, in the data's format (Parquet beside Megatron data:
    # they have no token ids to speak of).
    rejected_layout = OutputSpec(path=root, format="parquet" if output.format == "megatron" else output.format)

    def split(paths: list[str], where: str, rejected: bool, exclude: Any = None) -> snapshot.Split:
        return snapshot.write_split(
            paths,
            storage.join(folder, where),
            rejected_layout if rejected else output,
            lambda table: snapshot.published_columns(table, output, rejected, provenance),
            version,
            root,
            parent_manifest.get("rejected_files" if rejected else "files", []),
            parent,
            exclude,
            (parent_manifest.get("schemas") or {}).get("rejected_files" if rejected else "files"),
            None if rejected else _vocab_size(step_refs.values(), lineage_nodes),
        )

    data = split([o.kept for o in results[node].final], DATA_DIR, rejected=False)
    rejected = snapshot.Split([])
    if output.keep_rejected:
        rejected_paths = [
            path
            for name in lineage_nodes
            for outputs in results[name].stages
            for o in outputs
            for path in (o.unreadable, o.rejected)
            if path
        ]
        # A refresh reads its old inputs again: their documents come back rejected (as duplicates
        # of themselves, or by the same filters). The snapshot holds those rejections already.
        known = snapshot.snapshot_ids(root, parent_manifest) if stacked else None
        rejected = split(rejected_paths, REJECTED_DIR, rejected=True, exclude=known)

    counts = [row for name in lineage_nodes for row in results[name].counts()]
    operators = []
    for row in counts:
        ref = step_refs.get(row["step"])
        entry = dict(row)
        if ref is not None:
            entry.update(
                params=ref.params,
                version=ref.version,
                kind=ref.cls.kind.value,
                resource=ref.resource.value,
            )
            if ref.provenance:
                entry["provenance"] = ref.provenance
            summary = results[ref.node].summaries.get(ref.step) or _reported(results[ref.node], ref)
            if summary is not None:
                entry["summary"] = summary
        operators.append(entry)

    used_inputs = {
        src for name in lineage_nodes for src in recipe.nodes[name].sources if src in recipe.inputs
    }
    written_inputs = run_info["recipe_resolved"].get("inputs", {})
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "dataset": root,
        "parent": parent,
        "recipe_name": recipe.name,
        "recipe_file": recipe.source,
        "recipe_sha256": run_info["recipe_sha256"],
        "recipe": run_info["recipe_resolved"],
        "node": node,
        "inputs": [
            {
                "name": name,
                "path": written_inputs.get(name, {}).get("path", spec.path),  # as declared
                "format": spec.format,
                **_dataset_keys((input_datasets or {}).get(name)),
                "files": [
                    {"url": provenance.relative(name, s.url), "size": s.size, "sha256": s.sha256, "records": s.records}
                    for s in input_files[name]
                ],
            }
            for name, spec in recipe.inputs.items()
            if name in used_inputs
        ],
        "operators": operators,
        # Records that could not be read, per input, with their commonest reasons.
        "unreadable": {n: s for n, s in (run_info.get("unreadable") or {}).items() if n in used_inputs},
        "rows": sum(e["rows"] for e in data.entries),
        "tokens": output_layout.total_tokens(data.entries),  # None: no n_tokens on the documents
        "rejected_rows": sum(e["rows"] for e in rejected.entries),
        "files": data.entries,
        "rejected_files": rejected.entries,
        # Each split's Arrow schema (base64 IPC): the card declares it, so every reader types
        # every file alike (JSON lines included); a refresh's new files are cast to it.
        "schemas": {"files": snapshot.encode_schema(data.schema), "rejected_files": snapshot.encode_schema(rejected.schema)},
        # The version is the whole dataset: `stacked` when it holds its parent's files too.
        "snapshot": {
            "stacked": stacked,
            "parent_files": [versions.entry_repo_path(version, e) for e in data.entries if not e["new"]],
            "new_files": sum(1 for e in data.entries if e["new"]),
            "new_rows": sum(e["rows"] for e in data.entries if e["new"]),
            "parent_rows": sum(e["rows"] for e in data.entries if not e["new"]),
        },
        "output": output.model_dump(mode="json", exclude={"path"}, exclude_none=True),
        "run": run_info["run"],
        "recipeflow_version": recipeflow.__version__,
        # Stage-cache entries of this run (all its nodes: the cache beside the first output
        # serves every output): `recipeflow cache gc` keeps them.
        "cache_root": run_info.get("cache_root"),
        "cache_entries": sorted(
            {e for r in results.values() for e in r.cache_entries}
            | {e for r in results.values() for outs in r.stages for o in outs for e in o.cache_entries()}
        ),
    }
    partitions = output_layout.partition_counts(data.entries)
    if partitions:
        manifest["partitions"] = partitions
    manifest["history"] = history.store(
        root,
        version,
        manifest["parent"],
        [use for name in lineage_nodes for use in results[name].history],
        writers.coalesce_parts([o.kept for o in results[node].final]),
    )
    # The manifest is written last: until then no reader sees this version.
    versions.commit(root, version, manifest)
    if output.export_file:  # Data-Juicer's export_path: the committed documents as one file too
        published = [snapshot.published_columns(writers.read_table(part), output, False, provenance)
                     for part in writers.coalesce_parts([o.kept for o in results[node].final])]
        writers.write_jsonl_file(published, output.export_file)
    if output.keep_last:
        manifest["deleted_versions"] = versions.apply_retention(root, output.keep_last)
    card.write_card(root)  # the dataset card follows every commit (and retention)
    return manifest


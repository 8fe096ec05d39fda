"""``scope: history``: the signatures of published documents, stored with each version.

A deduplicator with ``scope: history`` compares a run's documents with every document its
output dataset has published. For that, each commit stores the signatures (hashes, band keys)
of the documents it published, and the next run reads all of them ahead of its own shards.

Layout: ``<root>/history/<key>/<version>.parquet``, where ``key`` names what the signatures
depend on (operator, its version, its signature parameters, provenance): signatures made
under other keys are not comparable and are not used. Each manifest lists, per key, the files
of every version so far (its parent's list plus its own), so a run finds the whole history in
the latest manifest. The files live outside ``versions/``: retention deletes old versions but
not their signatures, so what a deleted version published is still never published again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from recipeflow.io import storage
from recipeflow.datasets import versions
from recipeflow.io import writers
from recipeflow.engine.planner import OpRef, Plan, stable_hash
from recipeflow.recipe.models import Recipe
from recipeflow.operators import document as doc
from recipeflow.operators.dedup.deduplicator import Deduplicator

HISTORY_DIR = "history"


@dataclass(frozen=True)
class HistoryTarget:
    """A barrier that deduplicates against the history of the dataset at ``root``."""

    step: str
    operator: str
    key: str
    root: str


@dataclass
class HistoryUse:
    """What a run did with a target: the stored files it read and its own shards' signatures
    (stored at commit, for the documents the version publishes)."""

    target: HistoryTarget
    earlier: list[str]
    signatures: list[str] = field(default_factory=list)


def history_key(barrier: OpRef, recipe: Recipe | None = None) -> str | None:
    """Where the barrier's history is kept; None when it does not deduplicate against history.
    With ``recipe``, the provenance of the earlier steps writing the fields its signatures are
    made from (``embed``'s model sha256) is part of the key."""
    op = barrier.build()
    params = op.history_signature_params() if isinstance(op, Deduplicator) else None
    if params is None:
        return None
    identity = {"name": barrier.name, "version": barrier.version, "params": params, "provenance": barrier.provenance}
    upstream = _upstream_provenance(recipe, barrier, op.history_input_fields()) if recipe is not None else []
    if upstream:  # only then: keys of deduplicators without such inputs stay as they were
        identity["upstream"] = upstream
    return stable_hash(identity)[:24]


def _upstream_provenance(recipe: Recipe, barrier: OpRef, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """(operator, version, provenance) of each step before ``barrier`` on its node's path that
    writes one of ``fields``, in order."""
    if not fields:
        return []
    steps = [step for node in recipe.ancestors(barrier.node) if node != barrier.node
             for step in recipe.nodes[node].process]
    steps += recipe.nodes[barrier.node].process[: barrier.index]
    found = []
    for step in steps:
        op = step.build()
        if set(op.written_fields()) & set(fields):
            found.append({"name": step.operator, "version": op.version, "provenance": op.provenance()})
    return found


def history_targets(recipe: Recipe, plan: Plan) -> dict[str, HistoryTarget]:
    """step -> target, for every barrier with ``scope: history`` (validation made sure each
    reaches exactly one output)."""
    targets: dict[str, HistoryTarget] = {}
    for node in plan.nodes:
        for stage in node.stages:
            barrier = stage.barrier
            key = history_key(barrier, recipe) if barrier is not None else None
            if barrier is None or key is None:
                continue
            [output] = recipe.outputs_reaching(node.name)
            root = recipe.outputs[output].path
            targets[barrier.step] = HistoryTarget(barrier.step, barrier.name, key, root)
    return targets


def earlier_signatures(target: HistoryTarget) -> list[str]:
    """The stored signature files of every version of the dataset so far, oldest first."""
    latest = versions.latest_version(target.root)
    if latest is None:
        return []
    entry = versions.read_manifest(target.root, latest).get("history", {}).get(target.key)
    return [storage.join(target.root, path) for path in (entry or {}).get("files", [])]


def store(root: str, version: str, parent: str | None, uses: list[HistoryUse], published: list[str]) -> dict[str, Any]:
    """Store the signatures of the documents this version publishes (``published``: its data
    files) and return the manifest's ``history`` entry: the parent's, plus this version's."""
    entries: dict[str, Any] = {}
    if parent is not None:
        entries = dict(versions.read_manifest(root, parent).get("history", {}))
    mine = [u for u in uses if u.target.root == root]
    if not mine:
        return entries
    ids = pa.concat_arrays(
        [writers.read_table(p, columns=[doc.ID]).column(doc.ID).combine_chunks() for p in published]
        or [pa.array([], pa.string())]
    )
    for use in mine:
        tables = []
        for path in use.signatures:
            table = writers.read_table(path)
            tables.append(table.filter(pc.is_in(table.column(doc.ID), value_set=ids)))
        files = list(entries.get(use.target.key, {}).get("files", []))
        kept = writers.concat(tables) if tables else None
        if kept is not None and len(kept):
            relative = f"{HISTORY_DIR}/{use.target.key}/{version}.parquet"
            writers.write_table(kept, storage.join(root, relative))
            files.append(relative)
        entries[use.target.key] = {"operator": use.target.operator, "step": use.target.step, "files": files}
    return entries

"""Refreshes: an output whose latest version was made from the same inputs, by the same recipe
and the same operators, gets no new version.

"Nothing changed" is decided from what the version's manifest records, before any stage runs:

* the inputs the output reads: every file's URL and sha256 (an input that is a dataset: the
  version read) — a new, changed or removed file is a change;
* the recipe's resolved form (defaults filled in), leaving out the ``run`` settings that do
  not change the data (executor, workers, pools...; ``shard_size`` does: it cuts the files);
* every operator's name, parameters, version and provenance (a classifier whose model has a new
  version behind the same path is a change).

With all three equal, the run would write the same files as the latest version (runs are
deterministic), or — for ``scope: history`` deduplication — an empty version that only repeats
what is published already. ``run.cache: false`` always commits (it asks for a fresh run).
"""

from __future__ import annotations

import json
from typing import Any

from recipeflow.io import readers
from recipeflow.datasets import versions
from recipeflow.engine import snapshot
from recipeflow.engine.planner import Plan
from recipeflow.recipe.models import Recipe

# `run` settings that change what a run writes; the others only change how it runs.
_RUN_FIELDS_IN_DATA = ("shard_size",)


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _what_it_does(resolved: dict[str, Any]) -> Any:
    run = {k: v for k, v in resolved.get("run", {}).items() if k in _RUN_FIELDS_IN_DATA}
    return _plain({**{k: v for k, v in resolved.items() if k not in ("run", "description")}, "run": run})


def _operators(recipe: Recipe, plan: Plan, node: str) -> dict[str, Any]:
    """step -> what the operator at that step is, for ``node`` and every node it reads."""
    lineage = set(recipe.ancestors(node))
    refs = [
        ref
        for n in plan.nodes
        if n.name in lineage
        for s in n.stages
        for ref in ((s.barrier,) if s.barrier else ()) + s.ops
    ]
    return _plain({r.step: [r.name, r.params, r.version, r.provenance or {}] for r in refs})


def _recorded_operators(manifest: dict[str, Any]) -> dict[str, Any]:
    return _plain(
        {
            o["step"]: [o["operator"], o["params"], o["version"], o.get("provenance") or {}]
            for o in manifest.get("operators", [])
            if "params" in o  # reading and routing rows are not operators
        }
    )


def _inputs(
    recipe: Recipe, node: str, files: dict[str, list[readers.FileScan]], datasets: dict[str, Any]
) -> dict[str, Any]:
    used = {s for n in recipe.ancestors(node) for s in recipe.nodes[n].sources if s in recipe.inputs}
    provenance = snapshot.input_roots(recipe, datasets)  # manifests record URLs as published
    return {
        name: {
            "dataset": [datasets[name].root, datasets[name].version] if name in datasets else None,
            "files": [[provenance.relative(name, f.url), f.sha256] for f in files[name]],
        }
        for name in sorted(used)
    }


def _recorded_inputs(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        i["name"]: {
            "dataset": [i["dataset"], i["version"]] if "dataset" in i else None,
            "files": [[f["url"], f["sha256"]] for f in i["files"]],
        }
        for i in manifest.get("inputs", [])
    }


def unchanged_outputs(
    recipe: Recipe,
    resolved: dict[str, Any],
    plan: Plan,
    files: dict[str, list[readers.FileScan]],
    datasets: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """node -> a "nothing changed" result, for each output whose latest version was made from
    these inputs by this recipe (``resolved``: as written, with relative paths) and operators."""
    if not recipe.run.cache:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for node, output in recipe.outputs.items():
        manifests = versions.committed_manifests(output.path)
        if not manifests:
            continue
        latest = manifests[-1]
        if (
            latest.get("node") == node
            and _what_it_does(latest.get("recipe", {})) == _what_it_does(resolved)
            and _recorded_inputs(latest) == _inputs(recipe, node, files, datasets)
            and _recorded_operators(latest) == _operators(recipe, plan, node)
        ):
            found[node] = unchanged_result(latest)
    return found


def unchanged_result(latest: dict[str, Any]) -> dict[str, Any]:
    """What a run returns for an output it did not commit."""
    return {
        "committed": False,
        "dataset": latest["dataset"],
        "node": latest["node"],
        "version": None,
        "parent": latest["version"],
        "rows": latest["rows"],
        "message": (
            f"nothing changed in {latest['dataset']} since version {latest['version']} "
            "(same input files, recipe and operators): no version committed"
        ),
    }


def nothing_new(recipe: Recipe, node: str, results: dict[str, Any]) -> dict[str, Any] | None:
    """For an output deduplicated against its earlier versions (``scope: history``): when not
    one of this run's documents is new to the dataset, the result of committing nothing (an
    empty version would only say that); None otherwise."""
    lineage = recipe.ancestors(node)
    if not any(results[name].history for name in lineage if name in results):
        return None
    if sum(o.kept_rows for o in results[node].final):
        return None
    manifests = versions.committed_manifests(recipe.outputs[node].path)
    if not manifests:
        return None  # the first version is committed, even empty
    latest = manifests[-1]
    return {
        **unchanged_result(latest),
        "message": (
            f"no document of this run is new to {latest['dataset']} (scope: history) since "
            f"version {latest['version']}: no version committed"
        ),
    }


def committed(result: dict[str, Any]) -> bool:
    """Whether a run's result for an output is a new version (else: nothing changed)."""
    return result.get("committed", True)

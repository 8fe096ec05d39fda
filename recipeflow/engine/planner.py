"""Compile a recipe into stages.

Consecutive streamable operators on the same resource are fused into one stage, so one task
reads a shard once and runs them all. A barrier (deduplicator, selector) starts a new stage:
its per-shard apply step becomes the head of that stage, followed by the streamable operators
after it. A change of resource (cpu -> gpu) starts a new stage too, so each stage can run on
its own work pool.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from recipeflow.recipe.models import Recipe, RouteSpec
from recipeflow.operators import registry
from recipeflow.operators.base import BarrierOperator, Operator, Resource, StreamOperator


@dataclass(frozen=True)
class OpRef:
    """One operator of the recipe, where it stands, and how to build it."""

    node: str
    index: int
    name: str
    params: dict[str, Any]

    @property
    def step(self) -> str:
        return f"{self.node}.process[{self.index}]"

    @cached_property
    def cls(self) -> type[Operator]:
        return registry.get(self.name)

    @property
    def version(self) -> str:
        return self.cls.version

    @cached_property
    def resource(self) -> Resource:
        """Where the operator runs with these parameters: its ``resource_for(params)`` when it
        has one (decontaminate's judge on vLLM needs a GPU), else its class's ``resource``."""
        resource_for = getattr(self.cls, "resource_for", None)
        if resource_for is None:
            return self.cls.resource
        return resource_for(self.cls.Params.model_validate(self.params))

    @property
    def is_barrier(self) -> bool:
        return issubclass(self.cls, BarrierOperator)

    def build(self) -> Operator:
        return self.cls(self.params)

    @cached_property
    def provenance(self) -> dict[str, Any]:
        """What the operator uses beyond its parameters (a model file's sha256...)."""
        return self.build().provenance()

    def identity(self) -> dict[str, Any]:
        """What makes this operator's output what it is: part of every cache address, so a new
        model version behind the same path is not mistaken for the old one."""
        return {
            "name": self.name,
            "params": self.params,
            "version": self.version,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class Stage:
    """Work done by one task per shard: an optional barrier apply, then fused operators."""

    id: str
    node: str
    barrier: OpRef | None
    ops: tuple[OpRef, ...]

    @property
    def resource(self) -> Resource:
        refs = ([self.barrier] if self.barrier else []) + list(self.ops)
        return Resource.gpu if any(r.resource == Resource.gpu for r in refs) else Resource.cpu

    @property
    def operator_names(self) -> list[str]:
        return ([self.barrier.name] if self.barrier else []) + [o.name for o in self.ops]

    def build_ops(self) -> list[tuple[str, StreamOperator]]:
        return [(o.step, o.build()) for o in self.ops]  # type: ignore[misc]

    def fingerprint(self) -> str:
        """Hash of the operators this stage runs (names, parameters, versions)."""
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        # Once per stage: every shard's cache address holds it (26 us for a five-operator
        # stage, thousands of shards on the flow's critical path).
        payload = {
            "barrier": self.barrier.identity() if self.barrier else None,
            "ops": [o.identity() for o in self.ops],
        }
        return stable_hash(payload)


@dataclass
class NodePlan:
    name: str
    sources: list[str]
    stages: list[Stage] = field(default_factory=list)
    route: RouteSpec | None = None  # applied as the node reads its sources


@dataclass
class Plan:
    recipe: Recipe
    nodes: list[NodePlan]  # in dependency order

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)

    @property
    def stages(self) -> list[Stage]:
        return [s for n in self.nodes for s in n.stages]

    def describe(self) -> str:
        lines = []
        for node in self.nodes:
            route = ""
            if node.route is not None:
                rule = "in" if node.route.values is not None else "not in"
                route = f" where {node.route.field} {rule} {node.route.values or node.route.exclude}"
            lines.append(f"node {node.name} <- {', '.join(node.sources)}{route}")
            for stage in node.stages:
                kind = "barrier + " if stage.barrier else ""
                lines.append(
                    f"  stage {stage.id} [{stage.resource.value}] {kind}"
                    + " -> ".join(stage.operator_names)
                )
        return "\n".join(lines)


def stable_hash(payload: Any) -> str:
    """sha256 of a JSON-able value, independent of dict key order."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan_node(name: str, sources: list[str], refs: list[OpRef]) -> NodePlan:
    """Fuse one node's chain into stages."""
    groups: list[tuple[OpRef | None, list[OpRef]]] = []  # (barrier, streamable ops after it)
    for ref in refs:
        if ref.is_barrier:
            groups.append((ref, []))
            continue
        if groups:
            barrier, ops = groups[-1]
            last = ops[-1] if ops else barrier
            if last is not None and last.resource == ref.resource:
                ops.append(ref)
                continue
        groups.append((None, [ref]))
    if not groups:
        # A node with no operators still passes its documents through (a union, say).
        groups.append((None, []))
    stages = [
        Stage(id=f"{name}.s{i}", node=name, barrier=barrier, ops=tuple(ops))
        for i, (barrier, ops) in enumerate(groups)
    ]
    return NodePlan(name=name, sources=sources, stages=stages)


def plan_recipe(recipe: Recipe) -> Plan:
    """The recipe's nodes in dependency order, each cut into fused stages."""
    nodes = []
    for name in recipe.topological_nodes():
        spec = recipe.nodes[name]
        refs = [
            OpRef(node=name, index=i, name=step.operator, params=step.params)
            for i, step in enumerate(spec.process)
        ]
        node = plan_node(name, list(spec.sources), refs)
        node.route = spec.route
        nodes.append(node)
    return Plan(recipe=recipe, nodes=nodes)

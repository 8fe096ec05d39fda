"""The planner: fusion of streamable operators, barriers and resource changes start stages."""

from __future__ import annotations

import pytest

from recipeflow.engine.planner import OpRef, plan_node, plan_recipe
from recipeflow.recipe.validate import parse_recipe
from recipeflow.operators import registry
from recipeflow.operators.base import Mapper, Resource


class _GpuRewrite(Mapper):
    """Test-only GPU mapper."""

    name = "test_gpu_rewrite"
    resource = Resource.gpu

    def map_text(self, text: str) -> str:
        return text


@pytest.fixture
def gpu_operator(monkeypatch):
    monkeypatch.setitem(registry._OPERATORS, _GpuRewrite.name, _GpuRewrite)
    return _GpuRewrite.name


def refs(*names: str) -> list[OpRef]:
    return [OpRef(node="n", index=i, name=name, params={}) for i, name in enumerate(names)]


def shape(node):
    return [(s.barrier.name if s.barrier else None, [o.name for o in s.ops]) for s in node.stages]


def test_streamable_operators_fuse_into_one_stage():
    node = plan_node("n", ["in"], refs("html_extract", "normalize_whitespace", "text_length_filter"))
    assert shape(node) == [(None, ["html_extract", "normalize_whitespace", "text_length_filter"])]
    assert [s.id for s in node.stages] == ["n.s0"]


def test_barrier_starts_a_stage_and_absorbs_the_operators_after_it():
    node = plan_node(
        "n", ["in"],
        refs("html_extract", "exact_dedup", "normalize_whitespace", "text_length_filter", "exact_dedup"),
    )
    assert shape(node) == [
        (None, ["html_extract"]),
        ("exact_dedup", ["normalize_whitespace", "text_length_filter"]),
        ("exact_dedup", []),
    ]


def test_barrier_first_and_empty_node():
    assert shape(plan_node("n", ["in"], refs("exact_dedup", "text_length_filter"))) == [
        ("exact_dedup", ["text_length_filter"])
    ]
    assert shape(plan_node("n", ["in"], [])) == [(None, [])]


def test_resource_change_starts_a_stage(gpu_operator):
    node = plan_node(
        "n", ["in"], refs("normalize_whitespace", gpu_operator, gpu_operator, "text_length_filter")
    )
    assert shape(node) == [
        (None, ["normalize_whitespace"]),
        (None, [gpu_operator, gpu_operator]),
        (None, ["text_length_filter"]),
    ]
    assert [s.resource for s in node.stages] == [Resource.cpu, Resource.gpu, Resource.cpu]


def test_stage_fingerprint_changes_with_parameters_only_where_they_change():
    a = plan_node("n", ["in"], [OpRef("n", 0, "text_length_filter", {"min_length": 10, "max_length": None})])
    b = plan_node("n", ["in"], [OpRef("n", 0, "text_length_filter", {"max_length": None, "min_length": 10})])
    c = plan_node("n", ["in"], [OpRef("n", 0, "text_length_filter", {"min_length": 11, "max_length": None})])
    assert a.stages[0].fingerprint() == b.stages[0].fingerprint() != c.stages[0].fingerprint()


def test_recipe_plan_orders_nodes_by_dependency():
    recipe = parse_recipe(
        {
            "name": "graph",
            "inputs": {"web": {"path": "x.jsonl"}},
            "nodes": {
                "joined": {"from": ["clean", "rescued"], "process": [{"exact_dedup": {}}]},
                "rescued": {"from": "clean.rejected", "process": [{"normalize_whitespace": {}}]},
                "clean": {"from": "web", "process": [{"text_length_filter": {"min_length": 100}}]},
            },
            "outputs": {"joined": {"path": "out"}},
        }
    )
    plan = plan_recipe(recipe)
    assert [n.name for n in plan.nodes] == ["clean", "rescued", "joined"]
    assert plan.node("joined").sources == ["clean", "rescued"]
    assert shape(plan.node("joined")) == [("exact_dedup", [])]
    assert "stage joined.s0 [cpu] barrier + exact_dedup" in plan.describe()

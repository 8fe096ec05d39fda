"""How a recipe's runs look in the Prefect UI: the flow named after the recipe, runs named
``<recipe>-<version>`` and tagged, tasks named by what they do, and a lineage graph.

Run names: the version id is made at commit, at the end of the run, so the run starts as
``<recipe>-<UTC time>`` (unique, sortable) and is renamed ``<recipe>-<version>`` (or
``<recipe>-unchanged`` when nothing was committed) through the client's ``update_flow_run``
once the versions are known. A run counter fixed at the start would need a shared counter
(another write protocol) and would still not name the version, which is what a user looks for.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from recipeflow.datasets import lineage, versions
from recipeflow.recipe.models import Recipe

SCHEDULED = "scheduled"
MANUAL = "manual"
REFRESH = "refresh"
_AUTO_SCHEDULED = "auto-scheduled"  # the tag Prefect's scheduler gives the runs it creates
_SHARD = re.compile(r"^(?P<file>.+):(?P<start>\d+)-(?P<end>\d+)(?P<rest>\..+)?$")
MAX_GRAPH_INPUT_FILES = 6  # files drawn per input; more are one "+N more" node


def dataset_name(root: str) -> str:
    """The dataset's name, as artifact keys and tags use it: its root's last folder, as a slug."""
    last = root.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "-", last.lower()).strip("-") or "dataset"


def trigger_of(parent_tags: list[str] | None) -> str:
    """``scheduled`` for a run its deployment's schedule started, else ``manual``."""
    return SCHEDULED if _AUTO_SCHEDULED in (parent_tags or []) else MANUAL


def run_tags(recipe: Recipe, trigger: str) -> list[str]:
    """The recipe, its outputs (``output:<dataset>``), ``refresh`` when an output has a version
    already, and how the run was started."""
    tags = ["recipeflow", recipe.name] + [f"output:{dataset_name(o.path)}" for o in recipe.outputs.values()]
    if any(versions.latest_version(o.path) for o in recipe.outputs.values()):
        tags.append(REFRESH)
    return tags + [trigger]


def start_name(recipe: Recipe) -> str:
    return f"{recipe.name}-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}"


def final_name(recipe: Recipe, results: list[dict[str, Any]]) -> str:
    """``<recipe>-<version>`` of the first committed output (``+N`` more), else ``-unchanged``."""
    made = [r["version"] for r in results if r.get("committed", True) and r.get("version") and "dataset" in r]
    if not made:
        return f"{recipe.name}-unchanged"
    return f"{recipe.name}-{made[0]}" + (f"+{len(made) - 1}" if len(made) > 1 else "")


def shard_label(key: str) -> str:
    """``crawl/day1.jsonl:0-1000`` → ``crawl/day1.jsonl [rows 0–1000]``."""
    match = _SHARD.match(key)
    if match is None:
        return key
    rest = f" {match['rest'].lstrip('.')}" if match["rest"] else ""  # `.rejected`: that shard's rejected stream
    return f"{match['file']} [rows {match['start']}–{match['end']}]{rest}"


def task_label(node: str, operators: list[str], what: str = "") -> str:
    """What a stage's tasks do: ``<node>: <operators>`` (``what``: signatures, partition...)."""
    return f"{node}: {' → '.join(operators) or 'pass'}{' ' + what if what else ''}"


def task_name(node: str, operators: list[str], key: str, what: str = "") -> str:
    """``<node>: <operators> · <input file> [rows a–b]``."""
    return f"{task_label(node, operators, what)} · {shard_label(key)}"


def rename_run(name: str) -> None:
    """Rename the current flow run (the version is known only now, at its end)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    if run_id:
        with get_client(sync_client=True) as client:
            client.update_flow_run(run_id, name=name)


def _label(text: str) -> str:
    escaped = text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return '"' + escaped.replace("\n", "<br/>") + '"'


class _Graph:
    def __init__(self) -> None:
        self.lines = ["flowchart TB"]  # top to bottom: the artifact pane is narrow and tall
        self.ids: dict[tuple, str] = {}

    def node(self, key: tuple, shape: str, text: str, cls: str) -> tuple[str, bool]:
        """(id, new) of the node for ``key``; drawn the first time it is seen."""
        if key in self.ids:
            return self.ids[key], False
        node_id = f"n{len(self.ids)}"
        self.ids[key] = node_id
        opening, closing = {"dataset": ("[(", ")]"), "recipe": ("{{", "}}"), "file": ("[/", "/]")}[shape]
        self.lines.append(f"  {node_id}{opening}{_label(text)}{closing}:::{cls}")
        return node_id, True

    def edge(self, a: str, b: str, text: str = "", dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        self.lines.append(f"  {a} {arrow}{'|' + _label(text) + '|' if text else ''} {b}")


def lineage_mermaid(root: str, version: str) -> str:
    """A Mermaid flowchart of a version: its recipe, its inputs (files, or datasets' versions
    and, recursively, how those were made), and the parent version it builds on."""
    tree = lineage.dataset_lineage(f"{root}@{version}")
    graph = _Graph()
    _draw_version(graph, tree, current=True)
    graph.lines += [
        "  classDef current fill:#dbeafe,stroke:#1d4ed8,stroke-width:2px",
        "  classDef dataset fill:#f1f5f9,stroke:#475569",
        "  classDef recipe fill:#fef3c7,stroke:#b45309",
        "  classDef file fill:#ecfdf5,stroke:#047857",
    ]
    return "\n".join(graph.lines)


def _draw_version(graph: _Graph, tree: dict[str, Any], current: bool = False) -> str:
    name = dataset_name(tree["dataset"])
    text = f"{name} @ {tree['version']}"
    if "missing" in tree or tree.get("cycle") or tree.get("shown_above"):
        node_id, _ = graph.node(("v", tree["dataset"], tree["version"]), "dataset", text, "dataset")
        return node_id
    node_id, new = graph.node(
        ("v", tree["dataset"], tree["version"]), "dataset", f"{text}\n{tree.get('rows')} documents",
        "current" if current else "dataset",
    )
    if not new:
        return node_id
    recipe_id, _ = graph.node(
        ("r", tree["dataset"], tree["version"]), "recipe",
        f"recipe {tree.get('recipe_name')}\nsha256 {str(tree.get('recipe_sha256'))[:12]}", "recipe",
    )
    graph.edge(recipe_id, node_id)
    for inp in tree.get("inputs", []):
        if "dataset" in inp:
            upstream = _draw_version(graph, inp["upstream"])
            graph.edge(upstream, recipe_id, f"input {inp['name']}")
            continue
        files = inp.get("files", [])
        for f in files[:MAX_GRAPH_INPUT_FILES]:
            file_id, _ = graph.node(("f", inp["name"], f["url"]), "file",
                                    f"{inp['name']}: {f['url']}\nsha256 {str(f.get('sha256'))[:12]}", "file")
            graph.edge(file_id, recipe_id)
        if len(files) > MAX_GRAPH_INPUT_FILES:
            more, _ = graph.node(("f", inp["name"], "+more"), "file",
                                 f"{inp['name']}: +{len(files) - MAX_GRAPH_INPUT_FILES} more files", "file")
            graph.edge(more, recipe_id)
    parent = tree.get("parent_snapshot")
    if parent is not None:
        shared = (tree.get("rows_by_version") or {})
        held = sum(v for k, v in shared.items() if k != tree["version"])
        parent_id = _draw_version(graph, parent)
        graph.edge(parent_id, node_id, f"{held} documents shared (snapshot)", dotted=True)
    elif tree.get("parent"):
        parent_id, _ = graph.node(("v", tree["dataset"], tree["parent"]), "dataset",
                                  f"{name} @ {tree['parent']}", "dataset")
        graph.edge(parent_id, node_id, "parent (rebuilt, nothing shared)", dotted=True)
    return node_id

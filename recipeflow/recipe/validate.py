"""Recipe validation: raw YAML data in, a normalised :class:`Recipe` or every problem out.

A recipe is YAML in one of two forms:

* **chain**: ``process`` (a list of ``{operator: {params}}`` steps) and ``output``; it becomes one
  node named ``main`` reading from every input, in mapping order;
* **graph**: ``nodes`` (each ``{from: ..., process: [...]}``) and ``outputs`` (node name ->
  output spec); ``from`` names an input, a node, ``<node>.rejected``, or a list of them (union).

Validation reports every problem at once. Each :class:`RecipeIssue` names the file, the line,
the dotted field path, what was wrong, what was expected, and the nearest valid name when the
problem looks like a typo. Validation happens in layers that each see the raw YAML data, so a
structural error in one place does not hide an operator or graph error in another:

1. structure: the YAML-shaped pydantic models below (unknown fields, types, required fields);
2. form: chain or graph, not both, each complete;
3. steps: operator names against the registry, parameters against each operator's ``Params``;
4. graph: references in ``from``, cycles, outputs naming nodes.

Only when all layers pass is the normalised, graph-form :class:`Recipe` built.
"""



from collections.abc import Sequence
from typing import Any

from pydantic import (
    ValidationError,
)

from recipeflow.recipe import language_settings
from recipeflow.recipe.overlap import overlapping_paths
from recipeflow.recipe.yaml_source import PathKey
from recipeflow.operators import registry
from recipeflow.recipe.errors import IssueCollector, RecipeInvalid, add_validation_errors, describe_value, field_names

from recipeflow.recipe.models import CHAIN_KEYS, CHAIN_NODE, FROM_DESCRIPTION, GRAPH_KEYS, NodeSpec, REJECTED_SUFFIX, Recipe, RecipeDocument, STEP_EXAMPLE, Step, one_or_many, strip_rejected

# ---------------------------------------------------------------------------------------------
# Validation layers


def _check_structure(data: dict[str, Any], issues: IssueCollector) -> RecipeDocument | None:
    """Layer 1: field names, types and required fields, everywhere but inside steps."""
    try:
        return RecipeDocument.model_validate(data)
    except ValidationError as error:
        add_validation_errors(issues, error, RecipeDocument)
        return None


def _check_form(data: dict[str, Any], issues: IssueCollector) -> None:
    """Layer 2: a chain (process + output) or a graph (nodes + outputs), complete, not both."""
    chain = [key for key in CHAIN_KEYS if key in data]
    graph = [key for key in GRAPH_KEYS if key in data]
    either = "`process` + `output` (one chain of operators) or `nodes` + `outputs` (a graph)"
    if chain and graph:
        issues.add(
            (graph[0],),
            f"chain form ({', '.join(chain)}) and graph form ({', '.join(graph)}) cannot be mixed",
            expected=either,
        )
        return
    if not chain and not graph:
        if not _has_misspelt_form_key(data):  # the "unknown field" issue already says it all
            issues.add((), "no `process` or `nodes`: the recipe does nothing", expected=either)
        return
    present = (chain or graph)[0]
    for key in CHAIN_KEYS if chain else GRAPH_KEYS:
        if key not in data:
            issues.add((key,), f"missing required field: a recipe with `{present}` needs `{key}`")
        elif data[key] is None:
            expected = "a list of steps" if key == "process" else "a mapping"
            issues.add((key,), "is empty", expected=expected)


def _has_misspelt_form_key(data: dict[str, Any]) -> bool:
    known = set(field_names(RecipeDocument))
    unknown = [str(key) for key in data if key not in known]
    return any(registry.suggest(key, CHAIN_KEYS + GRAPH_KEYS) for key in unknown)


def _check_all_steps(data: dict[str, Any], issues: IssueCollector) -> dict[str, list[Step]]:
    """Layer 3: every step of every node; returns the valid steps by node name."""
    steps: dict[str, list[Step]] = {}
    if isinstance(data.get("process"), list):
        inputs = data.get("inputs")
        sources = [str(n) for n in inputs] if isinstance(inputs, dict) else []
        steps[CHAIN_NODE] = _check_steps(data["process"], ("process",), issues, sources=sources)
    nodes = data.get("nodes")
    if isinstance(nodes, dict):
        for name, node in nodes.items():
            if isinstance(node, dict) and isinstance(node.get("process"), list):
                defaults = _language_defaults(data, name, node, issues)
                sources = one_or_many(node.get("from"))
                steps[name] = _check_steps(
                    node["process"], ("nodes", name, "process"), issues, defaults,
                    sources=sources if isinstance(sources, list) else [],
                )
            else:
                steps[name] = []
    return steps


def _language_defaults(
    data: dict[str, Any], name: str, node: dict[str, Any], issues: IssueCollector
) -> dict[str, dict[str, Any]]:
    """Operator parameters from the settings file of the node's `language` (FineWeb2 style)."""
    language = node.get("language")
    if not isinstance(language, str):
        return {}
    folder = data.get("language_settings")
    try:
        return language_settings.load(language, folder if isinstance(folder, str) else None)
    except language_settings.UnknownLanguage as error:
        issues.add(("nodes", name, "language"), str(error), suggestion=error.suggestion)
    except ValueError as error:
        issues.add(("nodes", name, "language"), str(error))
    return {}


def _check_steps(
    raw_steps: list[Any],
    loc: PathKey,
    issues: IssueCollector,
    defaults: dict[str, dict[str, Any]] | None = None,
    sources: Sequence[str] = (),
) -> list[Step]:
    checked = (
        _check_step(raw, loc + (index,), issues, defaults or {}, sources)
        for index, raw in enumerate(raw_steps)
    )
    return [step for step in checked if step is not None]


def _check_step(
    raw: Any,
    loc: PathKey,
    issues: IssueCollector,
    defaults: dict[str, dict[str, Any]] | None = None,
    sources: Sequence[str] = (),
) -> Step | None:
    """One ``{operator: params}`` step against the registry and the operator's ``Params``."""
    if not isinstance(raw, dict) or len(raw) != 1:
        message, expected = _bad_step_message(raw)
        issues.add(loc, message, expected=expected)
        return None
    [(name, params)] = raw.items()
    loc = loc + (name,)
    operators = registry.operators()
    operator_class = operators.get(name) if isinstance(name, str) else None
    if operator_class is None:
        suggestion = registry.suggest(str(name), operators)
        message = "unknown operator"
        if suggestion is None:
            message += " (`recipeflow ops` lists them)"
        issues.add(loc, message, suggestion=suggestion)
        return None
    if params is None:  # `- html_extract:` means default parameters
        params = {}
    if not isinstance(params, dict):
        expected = "a mapping of parameters, `{}` or nothing"
        issues.add(loc, f"got {describe_value(params)}", expected=expected)
        return None
    # The node language's settings are defaults; what the step says wins.
    params = {**(defaults or {}).get(name, {}), **params}
    try:
        validated = operator_class.Params.model_validate(params)
    except ValidationError as error:
        add_validation_errors(issues, error, operator_class.Params, prefix=loc)
        return None
    problems = operator_class.check_sources(validated, [str(s) for s in sources])
    for problem in problems:
        issues.add(loc, problem)
    # Files an operator reads before its first document (decontaminate's benchmark sets):
    # a missing or empty file or a missing field is a recipe error, before any work.
    check_files = getattr(operator_class, "check_files", None)
    file_problems = check_files(validated) if check_files is not None else []
    for where, problem in file_problems:
        issues.add(loc + tuple(where), problem)
    if problems or file_problems:
        return None
    return Step(operator=name, params=validated.model_dump(mode="json", by_alias=True))


def _bad_step_message(raw: Any) -> tuple[str, str | None]:
    """(what is wrong, what was expected) for a step that is not a single-key mapping."""
    if isinstance(raw, str):
        return f"a step is a mapping, not a bare name: write `- {raw}: {{}}`", None
    if not isinstance(raw, dict):
        return f"got {describe_value(raw)}", STEP_EXAMPLE
    if not raw:
        return "empty step", STEP_EXAMPLE
    keys = ", ".join(str(key) for key in raw)
    message = f"a step has one key, the operator name; this one has {len(raw)}: {keys}"
    misplaced = _params_written_beside_operator(raw)
    if misplaced:  # the usual cause: parameters indented like the operator name
        return f"{message}; indent {misplaced[1]} under `{misplaced[0]}:`", None
    return message, STEP_EXAMPLE


def _params_written_beside_operator(raw: dict[Any, Any]) -> tuple[str, str] | None:
    """(operator, params) when a step reads like parameters that lost their indentation."""
    operators = registry.operators()
    for name, params in raw.items():
        if name in operators and params is None:
            others = [str(key) for key in raw if key != name]
            if set(others) <= set(field_names(operators[name].Params)):
                return name, ", ".join(others)
    return None


def _check_graph(data: dict[str, Any], issues: IssueCollector) -> None:
    """Layer 4: references in `from`, cycles, and outputs that name nodes."""
    nodes = data.get("nodes")
    inputs = data.get("inputs")
    if not isinstance(nodes, dict):
        if isinstance(inputs, dict):  # chain form: its one node is `main`
            _check_train_sources(data.get("train"), [str(n) for n in inputs], [CHAIN_NODE], issues)
        return
    input_names = [str(name) for name in inputs] if isinstance(inputs, dict) else None
    node_names = [str(name) for name in nodes]
    for name in node_names:
        if input_names and name in input_names:
            issues.add(
                ("nodes", name),
                f"{name!r} is both an input and a node, so `from: {name}` would be ambiguous",
                expected="node names that differ from input names",
            )
    dependencies = {
        name: _check_sources(name, node, input_names, node_names, issues)
        for name, node in nodes.items()
        if isinstance(node, dict)
    }
    for cycle in _find_cycles(dependencies, node_names):
        flow = " -> ".join(cycle + [cycle[0]])
        issues.add(
            ("nodes", cycle[0], "from"),
            f"cycle: {flow}; a node cannot read, directly or through others, from itself",
        )
    _check_outputs(data.get("outputs"), input_names or [], node_names, issues)
    _check_train_sources(data.get("train"), input_names, node_names, issues)


def _check_train_sources(
    train: Any, input_names: list[str] | None, node_names: list[str], issues: IssueCollector
) -> None:
    """`positive` and `negative` of each classifier (`graded` of a head) name inputs, nodes or
    rejected streams."""
    if not isinstance(train, dict):
        return
    for name, spec in train.items():
        if not isinstance(spec, dict):
            continue
        for side in ("positive", "negative", "graded"):
            if side in spec:
                _check_sources(
                    name, {"from": spec[side]}, input_names, node_names, issues,
                    loc=("train", name, side),
                )


def _check_sources(
    name: str,
    node: dict[str, Any],
    input_names: list[str] | None,
    node_names: list[str],
    issues: IssueCollector,
    loc: PathKey | None = None,
) -> list[str]:
    """Check one node's `from` (or another list of sources at ``loc``); returns the nodes it
    depends on."""
    raw = node.get("from")
    sources = one_or_many(raw)
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        return []  # missing or mistyped: the structure layer reports it
    loc = loc or ("nodes", name, "from")
    if not sources:
        expected = FROM_DESCRIPTION[0].lower() + FROM_DESCRIPTION[1:]
        issues.add(loc, "empty `from`: the node reads nothing", expected=expected)
        return []
    dependencies = []
    seen: set[str] = set()
    for index, source in enumerate(sources):
        source_loc = loc + (index,) if isinstance(raw, list) else loc
        if source in seen:
            issues.add(source_loc, f"{source!r} is listed twice; its documents would be read twice")
        seen.add(source)
        base = strip_rejected(source)
        if input_names is not None and source in input_names:
            continue  # an input, even if a node shares its name (reported as ambiguous)
        if base in node_names:
            dependencies.append(base)
        elif input_names is not None:
            _add_unknown_source(source, source_loc, input_names, node_names, issues)
    return dependencies


def _add_unknown_source(
    source: str, loc: PathKey, input_names: list[str], node_names: list[str], issues: IssueCollector
) -> None:
    base = strip_rejected(source)
    if source != base and base in input_names:
        issues.add(loc, f"{base!r} is an input: only nodes have a rejected stream")
        return
    candidates = input_names + node_names + [n + REJECTED_SUFFIX for n in node_names]
    expected = "an input ({}), a node ({}) or `<node>.rejected`".format(
        ", ".join(input_names) or "none", ", ".join(node_names)
    )
    issues.add(
        loc,
        f"unknown reference {source!r}",
        expected=expected,
        suggestion=registry.suggest(source, candidates),
    )


def _find_cycles(dependencies: dict[str, list[str]], declared: list[str]) -> list[list[str]]:
    """Each cycle once, in data-flow order, starting from its first-declared node."""
    order = {name: index for index, name in enumerate(declared)}
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    found: dict[frozenset[str], list[str]] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        path.append(name)
        for upstream in dependencies.get(name, []):
            if state.get(upstream) == "open":
                reads_from = path[path.index(upstream):]  # each node reads from the next one
                flow = list(reversed(reads_from))  # data flows the other way
                start = min(range(len(flow)), key=lambda i: order[flow[i]])
                found.setdefault(frozenset(flow), flow[start:] + flow[:start])
            elif upstream not in state:
                visit(upstream, path)
        path.pop()
        state[name] = "done"

    for name in declared:
        if name not in state:
            visit(name, [])
    return list(found.values())


def _check_outputs(
    outputs: Any, input_names: list[str], node_names: list[str], issues: IssueCollector
) -> None:
    """Every key of `outputs` must be a node."""
    if not isinstance(outputs, dict):
        return
    nodes = "one of " + ", ".join(node_names)
    for key in outputs:
        loc: PathKey = ("outputs", key)
        if key in node_names:
            continue
        if key in input_names:
            issues.add(loc, f"{key!r} is an input, not a node; outputs write nodes", expected=nodes)
            continue
        suggestion = registry.suggest(str(key), node_names)
        expected = None if suggestion else nodes
        issues.add(loc, "output names no node", expected=expected, suggestion=suggestion)


# ---------------------------------------------------------------------------------------------
# Building the recipe


def validate_data(data: Any, issues: IssueCollector) -> Recipe | None:
    """Run every layer; the recipe when nothing was found, else ``None`` (see ``issues``)."""
    fields = "name, inputs, and process + output (or nodes + outputs)"
    if data is None:
        issues.add((), "the recipe is empty", expected=fields)
        return None
    if not isinstance(data, dict):
        issues.add((), f"a recipe is a mapping of fields, got {describe_value(data)}", expected=fields)
        return None
    document = _check_structure(data, issues)
    _check_form(data, issues)
    steps = _check_all_steps(data, issues)
    _check_graph(data, issues)
    if issues.found or document is None:
        return None
    recipe = _build_recipe(document, steps, issues.source)
    _check_history_scope(recipe, chain=document.nodes is None, issues=issues)
    for loc, overlap in overlapping_paths(recipe, chain=document.nodes is None, lexical_only=True):
        issues.add(loc, str(overlap))
    _check_token_outputs(recipe, chain=document.nodes is None, issues=issues)
    return None if issues.found else recipe


def _check_token_outputs(recipe: Recipe, *, chain: bool, issues: IssueCollector) -> None:
    """Megatron output needs token ids, token-sized shards need token counts: a `tokenize`
    step (with keep_ids for Megatron) upstream of the output's node."""
    for name, output in recipe.outputs.items():
        if output.format != "megatron" and output.target_shard_tokens is None:
            continue
        steps = [s for node in recipe.ancestors(name) for s in recipe.nodes[node].process]
        tokenizers = [s for s in steps if s.operator == "tokenize"]
        loc_base: PathKey = ("output",) if chain else ("outputs", name)
        if output.format == "megatron" and not any(s.params.get("keep_ids") for s in tokenizers):
            issues.add(
                (*loc_base, "format"),
                "format: megatron writes token ids, but no `tokenize` step with keep_ids: true "
                f"comes before output {name!r}",
                expected="a `tokenize: {tokenizer: ..., keep_ids: true}` step upstream, or format parquet",
            )
        if output.target_shard_tokens is not None and not tokenizers:
            issues.add(
                (*loc_base, "target_shard_tokens"),
                f"target_shard_tokens counts n_tokens, but no `tokenize` step comes before output {name!r}",
                expected="a `tokenize` step upstream, or target_shard_rows",
            )


def _check_history_scope(recipe: Recipe, *, chain: bool, issues: IssueCollector) -> None:
    """A deduplicator with `scope: history` compares with one dataset's earlier versions: its
    node's documents must reach exactly one output."""
    for node_name, node in recipe.nodes.items():
        for index, step in enumerate(node.process):
            if step.params.get("scope") != "history":
                continue
            reached = recipe.outputs_reaching(node_name)
            if len(reached) == 1:
                continue
            loc: PathKey = ("process", index, step.operator, "scope") if chain else (
                "nodes", node_name, "process", index, step.operator, "scope"
            )
            found = f"it reaches {', '.join(reached)}" if reached else "it reaches no output"
            issues.add(
                loc,
                f"scope: history deduplicates against one output dataset's earlier versions, "
                f"but node {node_name!r} is not part of exactly one output ({found})",
                expected="a node whose documents go to one output, or scope: run",
            )


def _build_recipe(document: RecipeDocument, steps: dict[str, list[Step]], source: str) -> Recipe:
    """The graph form of a valid document."""
    if document.nodes is not None:
        nodes = {
            name: NodeSpec(
                sources=node.sources,
                route=node.route,
                language=node.language,
                process=steps.get(name, []),
            )
            for name, node in document.nodes.items()
        }
        outputs = dict(document.outputs or {})
    else:
        assert document.output is not None  # _check_form guarantees it
        chain = NodeSpec(sources=list(document.inputs), process=steps.get(CHAIN_NODE, []))
        nodes = {CHAIN_NODE: chain}
        outputs = {CHAIN_NODE: document.output}
    return Recipe(
        name=document.name,
        description=document.description,
        inputs=dict(document.inputs),
        nodes=nodes,
        outputs=outputs,
        run=document.run,
        train=dict(document.train),
        language_settings=document.language_settings,
        source=source,
    )


def parse_recipe(
    data: dict[str, Any], *, source: str = "<recipe>", lines: dict | None = None
) -> Recipe:
    """Validate recipe data (as loaded from YAML); ``lines`` maps field paths to line numbers.

    Raises :class:`RecipeInvalid` listing every problem.
    """
    issues = IssueCollector(source, dict(lines or {}))
    return recipe_or_raise(data, issues)


def recipe_or_raise(data: Any, issues: IssueCollector) -> Recipe:
    recipe = validate_data(data, issues)
    if recipe is None:
        raise RecipeInvalid(issues.sorted(), issues.source)
    return recipe

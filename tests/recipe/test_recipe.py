"""Recipe schema, loader and validation: real YAML files, real registered operators."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import jsonschema
import pytest
import yaml

from recipeflow.recipe.models import CHAIN_NODE, Recipe
from recipeflow.recipe.errors import RecipeInvalid, RecipeIssue
from recipeflow.recipe.loading import apply_overrides, load_recipe
from recipeflow.recipe.validate import parse_recipe
from recipeflow.recipe.schema import recipe_json_schema
from recipeflow.recipe.yaml_source import YamlSyntaxError, load_yaml
from recipeflow.operators import base, registry

CHAIN = """\
name: quickstart
description: a small chain
inputs:
  pages: {path: recipes/samples/*.warc.gz, format: warc}
  extra:
    path: data/extra.jsonl
    text_field: body
process:
  - html_extract: {}
  - normalize_whitespace:
  - text_length_filter: {min_length: 200}
output: {path: out/quickstart, format: parquet, keep_rejected: true}
run: {executor: threads, workers: 2, shard_size: 10000}
"""

GRAPH = """\
name: graph
inputs:
  pages: {path: pages.jsonl, format: jsonl}
nodes:
  both: {from: [clean, rescue], process: []}
  clean:
    from: pages
    process:
      - text_length_filter: {min_length: 200}
  rescue: {from: clean.rejected, process: [{text_length_filter: {min_length: 50}}]}
outputs:
  both: {path: out/both, format: parquet, keep_rejected: false}
  clean: {path: out/clean}
"""


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def issues_of(path: str, overrides: tuple[str, ...] = ()) -> list[RecipeIssue]:
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(path, overrides)
    return caught.value.issues


def issue_at(issues: list[RecipeIssue], path: str) -> RecipeIssue:
    matches = [issue for issue in issues if issue.path == path]
    assert matches, f"no issue at {path!r} in {[str(i) for i in issues]}"
    return matches[0]


class UpperParams(base.OperatorParams):
    """Parameters of the test-only operator."""

    only_ascii: bool = False


class Upper(base.Mapper):
    """Upper-cases text (registered by the tests only)."""

    name = "test_upper_case"
    Params = UpperParams

    def map_text(self, text: str) -> str:
        return text.upper()


@pytest.fixture
def test_operator(monkeypatch: pytest.MonkeyPatch) -> type[base.Operator]:
    """Register a test-only operator for one test; the registry is restored afterwards."""
    registry.operators()  # load the real operators first, so only ours is removed afterwards
    monkeypatch.setitem(registry._OPERATORS, Upper.name, Upper)
    return Upper


# --- the two forms -----------------------------------------------------------------------------


def test_chain_form_becomes_one_main_node_reading_every_input(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, CHAIN))

    assert list(recipe.nodes) == [CHAIN_NODE]
    main = recipe.nodes[CHAIN_NODE]
    assert main.sources == ["pages", "extra"]  # mapping order
    operators = [step.operator for step in main.process]
    assert operators == ["html_extract", "normalize_whitespace", "text_length_filter"]
    assert main.process[2].params["min_length"] == 200
    assert recipe.outputs[CHAIN_NODE].keep_rejected is True
    assert recipe.inputs["extra"].text_field == "body"
    assert recipe.inputs["extra"].format is None
    assert recipe.source == str(tmp_path / "recipe.yaml")
    assert recipe.topological_nodes() == [CHAIN_NODE]


def test_relative_paths_stay_as_written(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, CHAIN))

    assert recipe.inputs["pages"].path == "recipes/samples/*.warc.gz"
    assert recipe.outputs[CHAIN_NODE].path == "out/quickstart"


def test_graph_form_with_union_and_rejected_stream(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GRAPH))

    assert list(recipe.nodes) == ["both", "clean", "rescue"]
    assert recipe.nodes["clean"].sources == ["pages"]  # a single `from` becomes a list
    assert recipe.nodes["rescue"].sources == ["clean.rejected"]
    assert recipe.nodes["both"].sources == ["clean", "rescue"]
    assert recipe.nodes["both"].process == []
    assert set(recipe.outputs) == {"both", "clean"}
    # `both` is declared first but needs the other two.
    assert recipe.topological_nodes() == ["clean", "rescue", "both"]


def test_topological_order_breaks_ties_by_declaration(tmp_path: Path) -> None:
    text = """\
    name: ties
    inputs: {a: {path: a.jsonl}, b: {path: b.jsonl}}
    nodes:
      zeta: {from: b}
      alpha: {from: a}
      mix: {from: [alpha, zeta]}
      early: {from: a}
    outputs: {mix: {path: out/mix}}
    """
    recipe = load_recipe(write(tmp_path, text))

    assert recipe.topological_nodes() == ["zeta", "alpha", "mix", "early"]


def test_steps_build_registered_operators(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, CHAIN))

    operator = recipe.nodes[CHAIN_NODE].process[2].build()

    assert operator.name == "text_length_filter"
    assert operator.params.min_length == 200


def test_test_operator_can_be_used_in_a_recipe(tmp_path: Path, test_operator: type) -> None:
    text = CHAIN.replace("  - html_extract: {}\n", "  - test_upper_case: {only_ascii: true}\n")
    recipe = load_recipe(write(tmp_path, text))

    step = recipe.nodes[CHAIN_NODE].process[0]
    assert step.params == {"only_ascii": True}
    assert step.build().map_text("abc") == "ABC"


# --- errors: where, what, and the nearest valid name ---------------------------------------------


def test_misspelt_operator_is_suggested_on_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, CHAIN.replace("- text_length_filter:", "- text_lenght_filter:"))

    [issue] = issues_of(path)

    assert issue.line == 11
    assert issue.path == "process[2].text_lenght_filter"
    assert issue.suggestion == "text_length_filter"
    assert str(issue) == (
        f"{path}:11: process[2].text_lenght_filter: unknown operator; "
        'did you mean "text_length_filter"?'
    )


def test_unknown_operator_without_near_name_says_how_to_list_them(tmp_path: Path) -> None:
    path = write(tmp_path, CHAIN.replace("- html_extract: {}", "- qqqqqq: {}"))

    [issue] = issues_of(path)

    assert issue.suggestion is None
    assert "recipeflow ops" in issue.message


def test_misspelt_fields_at_top_level_and_in_an_input(tmp_path: Path) -> None:
    text = CHAIN.replace("description:", "descriptoin:")
    text = text.replace("    text_field: body", "    text_feild: body")

    issues = issues_of(write(tmp_path, text))

    top = issue_at(issues, "descriptoin")
    assert (top.line, top.message, top.suggestion) == (2, "unknown field", "description")
    nested = issue_at(issues, "inputs.extra.text_feild")
    assert (nested.line, nested.suggestion) == (7, "text_field")
    assert len(issues) == 2


def test_unknown_parameter_is_suggested(tmp_path: Path) -> None:
    path = write(tmp_path, CHAIN.replace("{min_length: 200}", "{min_lenght: 200}"))

    [issue] = issues_of(path)

    assert issue.path == "process[2].text_length_filter.min_lenght"
    assert issue.suggestion == "min_length"
    assert issue.line == 11


def test_wrong_parameter_type_names_path_and_expected(tmp_path: Path) -> None:
    path = write(tmp_path, CHAIN.replace("{min_length: 200}", "{min_length: lots}"))

    [issue] = issues_of(path)

    assert issue.path == "process[2].text_length_filter.min_length"
    assert issue.line == 11
    assert issue.expected == "an integer"
    assert "'lots'" in issue.message
    assert str(issue).endswith("got 'lots'; expected an integer")


def test_wrong_types_in_specs_say_what_was_expected(tmp_path: Path) -> None:
    text = CHAIN.replace("format: warc", "format: warcc").replace("workers: 2", "workers: 0")

    issues = issues_of(write(tmp_path, text))

    fmt = issue_at(issues, "inputs.pages.format")
    assert fmt.line == 4 and "'warc'" in (fmt.expected or "")
    workers = issue_at(issues, "run.workers")
    assert workers.line == 13 and workers.expected == "a value >= 1"


def test_missing_required_field_points_at_the_enclosing_mapping(tmp_path: Path) -> None:
    text = CHAIN.replace("    path: data/extra.jsonl\n", "")

    [issue] = issues_of(write(tmp_path, text))

    assert issue.path == "inputs.extra.path"
    assert issue.line == 5  # the `extra:` line
    assert issue.message == "missing required field"


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
    name: bad name
    inputs:
      pages: {pth: a.jsonl}
    process:
      - html_extrct: {}
      - text_length_filter: {min_length: x, max_length: y}
      - text_length_filter:
        min_length: 3
    output: {path: out, format: csv}
    run: {workers: many, executer: threads}
    """
    path = write(tmp_path, text)

    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(path)

    found = {(issue.line, issue.path) for issue in caught.value.issues}
    assert found == {
        (1, "name"),
        (3, "inputs.pages.path"),
        (3, "inputs.pages.pth"),
        (5, "process[0].html_extrct"),
        (6, "process[1].text_length_filter.min_length"),
        (6, "process[1].text_length_filter.max_length"),
        (7, "process[2]"),
        (9, "output.format"),
        (10, "run.workers"),
        (10, "run.executer"),
    }
    report = str(caught.value)
    assert report.splitlines()[0] == f"recipe {path} is invalid (10 errors):"
    assert len(report.splitlines()) == 11
    assert "indent min_length under `text_length_filter:`" in report
    lines = [issue.line for issue in caught.value.issues]
    assert lines == sorted(lines)  # in file order


def test_step_that_is_not_a_single_key_mapping(tmp_path: Path) -> None:
    text = CHAIN.replace("  - html_extract: {}\n", "  - html_extract\n  - {a: 1, b: 2}\n")

    issues = issues_of(write(tmp_path, text))

    assert "`- html_extract: {}`" in issue_at(issues, "process[0]").message
    assert "has 2" in issue_at(issues, "process[1]").message


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    text = CHAIN.replace("run: {executor: threads,", "run: {executor: threads, workers: 8,")

    [issue] = issues_of(write(tmp_path, text))

    assert (issue.path, issue.line) == ("run.workers", 13)
    assert "twice" in issue.message


def test_chain_and_graph_forms_cannot_be_mixed(tmp_path: Path) -> None:
    text = CHAIN + "nodes:\n  x: {from: pages}\n"

    issues = issues_of(write(tmp_path, text))

    assert "cannot be mixed" in issue_at(issues, "nodes").message


# --- graph errors -------------------------------------------------------------------------------


def test_unknown_from_reference_suggests_nearest(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("from: clean.rejected", "from: claen.rejected"))

    [issue] = issues_of(path)

    assert issue.path == "nodes.rescue.from"
    assert issue.line == 10
    assert issue.suggestion == "clean.rejected"


def test_unknown_reference_in_a_from_list_points_at_the_item(tmp_path: Path) -> None:
    text = """\
    name: listed
    inputs: {pages: {path: p.jsonl}}
    nodes:
      clean: {from: pages}
      both:
        from:
          - clean
          - claen
    outputs: {both: {path: out/both}}
    """

    [issue] = issues_of(write(tmp_path, text))

    assert (issue.path, issue.line, issue.suggestion) == ("nodes.both.from[1]", 8, "clean")
    assert "unknown reference 'claen'" in issue.message


def test_cycle_is_named(tmp_path: Path) -> None:
    text = """\
    name: loop
    inputs: {pages: {path: p.jsonl}}
    nodes:
      a: {from: [pages, c]}
      b: {from: a}
      c: {from: b.rejected}
    outputs: {a: {path: out/a}}
    """

    [issue] = issues_of(write(tmp_path, text))

    assert issue.path == "nodes.a.from"
    assert issue.line == 4
    assert "a -> b -> c -> a" in issue.message


def test_outputs_must_name_nodes(tmp_path: Path) -> None:
    text = GRAPH.replace(
        "  clean: {path: out/clean}", "  claen: {path: out/clean}\n  pages: {path: out/p}"
    )

    issues = issues_of(write(tmp_path, text))

    typo = issue_at(issues, "outputs.claen")
    assert (typo.line, typo.suggestion) == (13, "clean")
    assert "is an input" in issue_at(issues, "outputs.pages").message


def test_empty_from_and_rejected_input(tmp_path: Path) -> None:
    text = GRAPH.replace("from: [clean, rescue]", "from: []")
    text = text.replace("from: clean.rejected", "from: pages.rejected")

    issues = issues_of(write(tmp_path, text))

    assert "empty" in issue_at(issues, "nodes.both.from").message
    assert "only nodes have a rejected stream" in issue_at(issues, "nodes.rescue.from").message


# --- overrides ----------------------------------------------------------------------------------


def test_overrides_set_values_by_dotted_path(tmp_path: Path) -> None:
    overrides = (
        "run.workers=4",
        "process.2.text_length_filter.min_length=50",
        "process.1.normalize_whitespace.max_blank_lines=2",  # params were null
        "output.keep_rejected=false",
        "description=[a, b]",
    )
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(write(tmp_path, CHAIN), overrides)
    # The list value arrives as a list, and is reported as coming from --set, with no file line.
    [issue] = caught.value.issues
    assert issue.path == "description" and issue.line is None
    assert "--set description=[a, b]" in issue.message and issue.expected == "a string"

    recipe = load_recipe(write(tmp_path, CHAIN), overrides[:-1])
    assert recipe.run.workers == 4
    assert recipe.nodes[CHAIN_NODE].process[2].params["min_length"] == 50
    assert recipe.nodes[CHAIN_NODE].process[1].params["max_blank_lines"] == 2
    assert recipe.outputs[CHAIN_NODE].keep_rejected is False


def test_apply_overrides_copies_and_creates_missing_keys() -> None:
    data = {"run": {"workers": 2}, "process": [{"html_extract": None}]}

    overrides = ["run.shard_size=5", "process.0.html_extract.links=true", "new.key=x"]

    result = apply_overrides(data, overrides)

    assert result == {
        "run": {"workers": 2, "shard_size": 5},
        "process": [{"html_extract": {"links": True}}],
        "new": {"key": "x"},
    }
    assert data == {"run": {"workers": 2}, "process": [{"html_extract": None}]}


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("process.7.text_length_filter.min_length=1", "out of range"),
        ("process.first.x=1", "expected an item number"),
        ("name.part=1", "not a mapping or a list"),
        ("run.workers", "PATH=VALUE"),
        ("run..workers=1", "empty segment"),
        ("run.workers=[1,", "not valid YAML"),
    ],
)
def test_bad_override_paths_are_issues(tmp_path: Path, override: str, problem: str) -> None:
    [issue] = issues_of(write(tmp_path, CHAIN), (override,))

    assert problem in issue.message
    assert override in issue.message
    with pytest.raises(RecipeInvalid):
        apply_overrides(yaml.safe_load(CHAIN), [override])


def test_invalid_override_value_is_reported_against_the_override(tmp_path: Path) -> None:
    [issue] = issues_of(write(tmp_path, CHAIN), ("run.workers=four",))

    assert issue.path == "run.workers"
    assert issue.line is None
    assert "--set run.workers=four" in issue.message


# --- YAML and files -----------------------------------------------------------------------------


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    text = CHAIN.replace("  - html_extract: {}", "  - html_extract: {")

    [issue] = issues_of(write(tmp_path, text))

    assert issue.line is not None and 8 <= issue.line <= 10
    assert "not valid YAML" in issue.message and "column" in issue.message


def test_tabs_get_a_hint(tmp_path: Path) -> None:
    [issue] = issues_of(write(tmp_path, "name: x\ninputs:\n\tpages: {path: a}\n"))

    assert issue.line == 3
    assert "spaces, not tabs" in issue.message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yaml")

    [issue] = issues_of(path)

    assert "file not found" in str(issue)
    assert str(issue).startswith(path)


def test_empty_file(tmp_path: Path) -> None:
    [issue] = issues_of(write(tmp_path, "# nothing yet\n"))

    assert "empty" in issue.message


def test_yaml_source_lines_for_nested_list_and_flow_fields() -> None:
    text = textwrap.dedent(
        """\
        a:
          b: {c: 1, d: [x, y]}
          e:
            - f: 1
              g: 2
            -
              h: 3
          i: {j: 1,
              k: 2}
        """
    )
    document = load_yaml(text)

    assert document.data["a"]["e"][1] == {"h": 3}
    assert document.lines[("a",)] == 1
    assert document.lines[("a", "b", "c")] == 2
    assert document.lines[("a", "b", "d", 1)] == 2
    assert document.lines[("a", "e", 0)] == 4
    assert document.lines[("a", "e", 0, "g")] == 5
    assert document.lines[("a", "e", 1)] == 7
    assert document.lines[("a", "i", "k")] == 9
    assert document.duplicate_keys == []


def test_yaml_source_reports_syntax_position() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml("a: 1\nb: [1, 2\nc: 3\n")

    assert caught.value.line is not None and caught.value.column is not None


def test_recipe_invalid_survives_pickling(tmp_path: Path) -> None:
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(write(tmp_path, CHAIN.replace("html_extract", "html_extrakt")))

    copy = pickle.loads(pickle.dumps(caught.value))

    assert str(copy) == str(caught.value)


# --- resolved form and identity -----------------------------------------------------------------


def test_resolved_fills_defaults_and_round_trips(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, CHAIN))

    resolved = recipe.resolved()

    assert list(resolved) == ["name", "description", "inputs", "nodes", "outputs", "run"]
    assert resolved["inputs"]["pages"] == {
        "path": "recipes/samples/*.warc.gz",
        "format": "warc",
        "text_field": "text",
        "id_field": "id",
    }
    steps = resolved["nodes"]["main"]["process"]
    assert steps[2] == {"text_length_filter": {"min_length": 200, "max_length": None}}
    assert steps[1]["normalize_whitespace"] == recipe.nodes["main"].process[1].params
    assert resolved["nodes"]["main"]["from"] == ["pages", "extra"]
    output = {"path": "out/quickstart", "format": "parquet", "keep_rejected": True, "keep_last": None,
              "create_bucket": False}
    assert resolved["outputs"] == {"main": output}
    assert "source" not in resolved
    json.dumps(resolved)  # JSON-able
    # The resolved form is itself a recipe, with the same identity.
    again = parse_recipe(resolved, source=recipe.source)
    assert again == recipe
    assert again.sha256() == recipe.sha256()


def test_sha256_ignores_key_order_and_layout(tmp_path: Path) -> None:
    reordered = """\
    run: {shard_size: 10000, workers: 2, executor: threads}
    output:
      keep_rejected: true
      format: parquet
      path: out/quickstart
    process:
      - html_extract:
      - normalize_whitespace: {max_blank_lines: 1}
      - text_length_filter: {max_length: null, min_length: 200}
    inputs:
      pages: {format: warc, path: recipes/samples/*.warc.gz}
      extra: {text_field: body, path: data/extra.jsonl, id_field: id}
    description: a small chain
    name: quickstart
    """
    first = load_recipe(write(tmp_path, CHAIN, "a.yaml"))
    second = load_recipe(write(tmp_path, reordered, "b.yaml"))

    assert first.sha256() == second.sha256()
    assert len(first.sha256()) == 64
    override = "process.2.text_length_filter.min_length=201"
    changed = load_recipe(write(tmp_path, CHAIN, "c.yaml"), [override])
    assert changed.sha256() != first.sha256()


def test_parse_recipe_without_lines() -> None:
    data = yaml.safe_load(CHAIN)
    data["process"][0] = {"html_extract": {"linkz": True}}

    with pytest.raises(RecipeInvalid) as caught:
        parse_recipe(data, source="inline")

    [issue] = caught.value.issues
    assert (issue.file, issue.line, issue.suggestion) == ("inline", None, "links")


# --- JSON Schema --------------------------------------------------------------------------------


def test_json_schema_covers_every_operator_and_validates_recipes(test_operator: type) -> None:
    schema = recipe_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    step = schema["$defs"]["Step"]
    step_names = list(step["properties"])
    assert set(step_names) == set(registry.operators())
    assert "test_upper_case" in step_names
    for name, params in step["properties"].items():
        assert params["description"], name
    assert step["minProperties"] == step["maxProperties"] == 1 and step["additionalProperties"] is False

    validator.validate(yaml.safe_load(CHAIN))
    validator.validate(yaml.safe_load(GRAPH))
    validator.validate(yaml.safe_load(CHAIN.replace("html_extract", "test_upper_case")))


@pytest.mark.parametrize(
    "mutation",
    [
        ("text_length_filter", "text_lenght_filter"),  # unknown operator
        ("{min_length: 200}", "{min_length: many}"),  # wrong parameter type
        ("format: warc", "format: warcc"),  # not a known format
        ("run:", "rnu:"),  # unknown top-level field
    ],
)
def test_json_schema_rejects_what_the_loader_rejects(
    tmp_path: Path, mutation: tuple[str, str]
) -> None:
    text = CHAIN.replace(*mutation)
    validator = jsonschema.Draft202012Validator(recipe_json_schema())

    assert not validator.is_valid(yaml.safe_load(text))
    with pytest.raises(RecipeInvalid):
        load_recipe(write(tmp_path, text))


def test_json_schema_rejects_mixed_forms() -> None:
    data = yaml.safe_load(CHAIN)
    data["nodes"] = {"x": {"from": "pages"}}

    assert not jsonschema.Draft202012Validator(recipe_json_schema()).is_valid(data)


def test_recipe_modules_do_not_import_prefect() -> None:
    code = "import sys, recipeflow.recipe.models; print('prefect' in sys.modules)"
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "False"


def test_history_scope_needs_a_node_that_reaches_one_output(tmp_path):
    path = write(
        tmp_path,
        """
        name: two-outputs
        inputs:
          docs: {path: docs.jsonl}
        nodes:
          clean:
            from: docs
            process:
              - exact_dedup: {scope: history}
          a: {from: clean, process: []}
          b: {from: clean, process: []}
        outputs:
          a: {path: out/a}
          b: {path: out/b}
        """,
    )
    issue = issue_at(issues_of(path), "nodes.clean.process[0].exact_dedup.scope")
    assert "reaches a, b" in issue.message and issue.line == 9
    assert issue.expected == "a node whose documents go to one output, or scope: run"
    # With one output downstream, the history is that output's.
    recipe = load_recipe(path, ("nodes.b.from=docs",))
    assert recipe.outputs_reaching("clean") == ["a"]


# --- hostile YAML -------------------------------------------------------------------------------


def billion_laughs(levels: int, fanout: int = 9) -> str:
    lines = ["a0: &a0 [lol]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * fanout)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_expansion_is_bounded(tmp_path: Path) -> None:
    started = time.perf_counter()
    tracemalloc.start()
    try:
        [issue] = issues_of(write(tmp_path, billion_laughs(9)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2
    assert peak < 50 * 2**20
    assert "alias" in issue.message and "not valid YAML" in issue.message
    assert issue.line is not None


def test_yaml_nesting_depth_is_bounded(tmp_path: Path) -> None:
    [issue] = issues_of(write(tmp_path, "name: x\nprocess: " + "[" * 20_000 + "]" * 20_000 + "\n"))

    assert "nested" in issue.message and issue.line == 2


def test_a_few_aliases_still_load() -> None:
    document = load_yaml("base: &b {min_length: 5}\nx: *b\ny: {<<: *b, max_length: 9}\n")

    assert document.data["y"] == {"min_length": 5, "max_length": 9}
    assert document.lines[("x", "min_length")] == 1


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['true']",
                                 "!!python/name:os.system", "!!python/object/new:os.system [true]"])
def test_unsafe_yaml_tags_are_refused(tmp_path: Path, tag: str) -> None:
    [issue] = issues_of(write(tmp_path, f"name: x\nrun: {tag}\n"))

    assert "not valid YAML" in issue.message and issue.line == 2


# --- nonsense thresholds ------------------------------------------------------------------------


@pytest.mark.parametrize("step, problems", [
    ("gopher_quality_filter: {min_doc_words: -10, max_doc_words: -20}",
     {"min_doc_words": "0", "max_doc_words": "0"}),
    ("alphanumeric_filter: {min_ratio: 5, max_ratio: -1}",
     {"min_ratio": "1", "max_ratio": "0"}),
    ("gopher_quality_filter: {min_doc_words: 500, max_doc_words: 100}",
     {"max_doc_words": "min_doc_words (500)"}),
    ("text_length_filter: {min_len: 50, max_len: 10}", {"max_len": "min_length (50)"}),
    ("words_num_filter: {min_num: 20, max_num: 5}", {"max_num": "min_num (20)"}),
    ("fineweb_quality_filter: {line_punct_thr: 1.5, short_line_length: -1}",
     {"line_punct_thr": "1", "short_line_length": "0"}),
    ("gopher_repetition_filter: {dup_line_frac: -0.3}", {"dup_line_frac": "0"}),
    ("c4_quality_filter: {min_num_sentences: -5}", {"min_num_sentences": "-1"}),
    ("stopwords_filter: {min_ratio: 1.3}", {"min_ratio": "1"}),
])
def test_nonsense_thresholds_fail_validation_on_their_line(
    tmp_path: Path, step: str, problems: dict[str, str]
) -> None:
    path = write(tmp_path, CHAIN.replace("text_length_filter: {min_length: 200}", step))

    issues = issues_of(path)

    operator = step.split(":")[0]
    assert {i.path for i in issues} == {f"process[2].{operator}.{f}" for f in problems}
    for field, bound in problems.items():
        issue = issue_at(issues, f"process[2].{operator}.{field}")
        assert issue.line == 11 and issue.file == path
        assert bound in str(issue)


def test_sensible_thresholds_and_data_juicer_defaults_still_validate(tmp_path: Path) -> None:
    for step in ["gopher_quality_filter: {min_doc_words: 50, max_doc_words: 0}",  # 0 = rule off
                 "alphanumeric_filter: {min_ratio: 0.25, max_ratio: 9223372036854775807}",
                 "text_length_filter: {min_length: 5, max_length: 5}",
                 "gopher_quality_filter: {min_doc_words: null, max_doc_words: 10}"]:
        load_recipe(write(tmp_path, CHAIN.replace("text_length_filter: {min_length: 200}", step)))


def test_every_bundled_recipe_still_validates() -> None:
    recipes = sorted((Path(__file__).parents[2] / "recipes").glob("*.yaml"))
    assert recipes
    for recipe in recipes:
        load_recipe(str(recipe))


# --- outputs overlapping inputs -----------------------------------------------------------------


OVERLAP = """\
name: overlap
inputs:
  docs: {path: INPUT, format: jsonl}
process:
  - text_length_filter: {min_length: 1}
output: {path: OUTPUT, keep_last: 1}
"""


@pytest.mark.parametrize("input_path, output_path, relation", [
    ("data", "data", "same folder"),
    ("data", "./data/", "same folder"),
    ("data", "data/out", "output root is inside"),
    ("data/**/*.jsonl", "data/out", "output root is inside"),
    ("data/*/*.jsonl", "data/out", "output root is inside"),
    ("out/versions/v1/*.parquet", "out", "input is inside"),
    ("out@20260101-000000-abcdef", "out", "same folder"),
    ("/srv/data", "/srv/data/out", "output root is inside"),
    ("s3://bucket/raw", "s3://bucket/raw/out", "output root is inside"),
    ("s3://bucket/raw/", "s3://bucket", "input is inside"),
])
def test_an_output_overlapping_an_input_is_invalid(
    tmp_path: Path, input_path: str, output_path: str, relation: str
) -> None:
    text = OVERLAP.replace("INPUT", input_path).replace("OUTPUT", output_path)

    [issue] = issues_of(write(tmp_path, text))

    assert issue.path == "output.path" and issue.line == 6
    assert f"inputs.docs.path ({input_path})" in issue.message and "overlap" in issue.message
    assert relation in issue.message


@pytest.mark.parametrize("input_path, output_path", [
    ("data/*.jsonl", "data/out"),  # the glob does not descend into data/out
    ("data", "data-out"),
    ("data/a.jsonl", "out"),
    ("s3://bucket/raw", "s3://bucket/raw2"),
    ("s3://bucket/raw", "gs://bucket/raw/out"),
    ("data", "/abs/data"),  # relative and absolute: left to the run's preflight
])
def test_outputs_apart_from_inputs_are_valid(tmp_path: Path, input_path: str, output_path: str) -> None:
    load_recipe(write(tmp_path, OVERLAP.replace("INPUT", input_path).replace("OUTPUT", output_path)))


def test_graph_outputs_and_training_outputs_are_checked_too(tmp_path: Path) -> None:
    text = GRAPH.replace("out/clean", "pages.jsonl/..")
    [issue] = issues_of(write(tmp_path, text))
    assert issue.path == "outputs.clean.path" and "inputs.pages.path (pages.jsonl)" in issue.message

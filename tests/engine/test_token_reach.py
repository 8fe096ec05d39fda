"""A mix budget that no tokenizer could fill from the inputs is refused before any work, with
the file, line and field; budgets the input bytes allow are not."""

from __future__ import annotations

import gzip
import json
import random
import string
from pathlib import Path

import pytest
from click.testing import CliRunner

from recipeflow.cli import main
from recipeflow.engine import token_reach
from recipeflow.orchestration.runner import run_recipe
from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.loading import load_recipe
from recipeflow.recipe.paths import with_absolute_paths

RECIPE = """\
name: reach
inputs:
  web: {path: %(web)s}
  books: {path: %(books)s}
nodes:
  corpus:
    from: [web, books]
    process:
      %(before)s
      - tokenize: {tokenizer: smollm2}
      - mix:
          by: tokens
          weights: {web: 0.5, books: 0.5}
          target_tokens: %(target)s
          on_short: %(on_short)s
outputs:
  corpus: {path: %(out)s}
"""


def _inputs(tmp_path: Path) -> tuple[Path, Path, int, int]:
    """A plain JSONL file and a gzipped one whose text hardly compresses (random letters), so
    the gzip's own size is well under its decompressed size. Returns their decompressed sizes."""
    rng = random.Random(0)
    web, books = tmp_path / "web.jsonl", tmp_path / "books.jsonl.gz"
    lines = [json.dumps({"id": str(i), "text": "".join(rng.choices(string.ascii_lowercase + " ", k=2000))})
             for i in range(50)]
    web.write_text("\n".join(lines[:25]) + "\n")
    packed = ("\n".join(lines[25:]) + "\n").encode()
    books.write_bytes(gzip.compress(packed))
    assert books.stat().st_size < 0.7 * len(packed)
    return web, books, web.stat().st_size, len(packed)


def _recipe(tmp_path: Path, target: float, on_short: str = "error", before: str = "- normalize_whitespace: {}") -> Path:
    web, books, _, _ = _inputs(tmp_path)
    path = tmp_path / "reach.yaml"
    path.write_text(RECIPE % {"web": web, "books": books, "target": target, "on_short": on_short,
                              "before": before, "out": tmp_path / "out"})
    return path


def _unreachable(path: Path) -> list[token_reach.Unreachable]:
    return token_reach.unreachable_budgets(with_absolute_paths(load_recipe(str(path))))


def test_a_budget_over_the_input_bytes_names_the_source_file_line_and_field(tmp_path):
    _, _, web_bytes, books_bytes = _inputs(tmp_path)
    # Each source is asked for half: 4 epochs of a source's bytes fall short of half of 10x both.
    path = _recipe(tmp_path, 10 * (web_bytes + books_bytes))
    found = _unreachable(path)
    assert [p.loc for p in found] == [("nodes", "corpus", "process", 2, "mix", "target_tokens")] * 2
    assert f"at most {web_bytes:,} bytes" in found[0].message
    assert f"{books_bytes:,} bytes" in found[1].message  # the gzip's decompressed size, read whole
    with pytest.raises(RecipeInvalid) as error:
        run_recipe(str(path), progress=False)
    assert f"{path}:14: nodes.corpus.process[2].mix.target_tokens: mix source 'web'" in str(error.value)
    assert "on_short: rescale" in str(error.value)
    assert not (tmp_path / "out").exists()  # refused before any work


def test_budgets_the_bytes_allow_are_not_refused(tmp_path):
    _, _, web_bytes, books_bytes = _inputs(tmp_path)
    # Half of this asks each source for at most 4x its bytes (books: beyond its gzip's size,
    # so the gzip is decompressed to know).
    assert _unreachable(_recipe(tmp_path, 2 * 4 * min(web_bytes, books_bytes))) == []
    assert _unreachable(_recipe(tmp_path, 1e12, on_short="rescale")) == []  # rescale: the mix says what it gave
    # A step that repeats documents (or writes text) lifts the bound: nothing to refuse.
    rehydrate = "- rehydrate: {field: n, repeats: {'1': 1, '2': 5}}"
    assert _unreachable(_recipe(tmp_path, 1e12, before=rehydrate)) == []


def test_validate_check_inputs_reports_it(tmp_path):
    path = _recipe(tmp_path, 1e12)
    done = CliRunner().invoke(main, ["validate", str(path), "--check-inputs"], catch_exceptions=False)
    assert done.exit_code == 1
    err = done.output
    assert "nodes.corpus.process[2].mix.target_tokens" in err and "no tokenizer makes more tokens than bytes" in err

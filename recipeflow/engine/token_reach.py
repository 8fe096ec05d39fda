"""Whether a mix's token budget can be reached at all, known before any work starts.

No tokenizer makes more tokens of a text than the text has UTF-8 bytes: every token of a
byte-level BPE holds at least one byte, every token of a SentencePiece or WordPiece model at
least one character (or one byte, with byte fallback). A document's text is no longer than the
record it is read from, whose framing (a JSON line's ``{"text": ""}``, a WARC record's headers)
also outweighs the two or three special tokens (BOS, EOS, a dummy prefix) a document may gain.
So the decompressed bytes of the input files that feed a source bound the tokens that source
can ever give — as long as nothing on the way writes text of its own or repeats documents
(``Operator.adds_text``). A stated budget (``target_tokens``, or the phases' budgets) that asks
a source for more than ``max_epochs`` times that bound can never be met: the run is refused
before any work, instead of failing at the mix after everything upstream has run. Budgets the
bound allows but the data does not are still caught when the mix resolves, before any commit.

The bound costs nothing in the usual case: a compressed file holds at least about its own size
once decompressed, so files are only decompressed (and only as far as needed) when the budget
asks for more than their compressed size.
"""

from __future__ import annotations

from dataclasses import dataclass

import fsspec

from recipeflow.engine.inputs import resolve_input
from recipeflow.io import storage
from recipeflow.io.readers.formats import compression_of, decompressed
from recipeflow.operators import registry
from recipeflow.operators.mix import MixParams
from recipeflow.operators.mixing.by_tokens import source_demand
from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.loading import issues_in_file
from recipeflow.recipe.models import Recipe, Step
from recipeflow.recipe.yaml_source import PathKey

REJECTED = ".rejected"
# Decompressed bytes are at least this share of a compressed file's size, less a header: gzip,
# zstd, bzip2 and xz all grow incompressible data by well under 1%.
LEAST_EXPANSION = 0.98
HEADER_BYTES = 1024
TEXT_FORMATS = ("jsonl", "warc", "text")  # a Parquet column's stored size does not bound its text
CHUNK = 1 << 20


@dataclass(frozen=True)
class Unreachable:
    """A source of a mix that cannot give its share of the stated budget, for any tokenizer."""

    loc: PathKey  # the field that states the budget
    message: str
    expected: str


def check_budgets(recipe: Recipe) -> None:
    """:class:`RecipeInvalid` naming, at its line, every budget no tokenizer could fill from
    the inputs; ``recipe``: with absolute local paths."""
    unreachable = unreachable_budgets(recipe)
    if unreachable:
        issues = issues_in_file(recipe.source or "<recipe>")
        for problem in unreachable:
            issues.add(problem.loc, problem.message, expected=problem.expected)
        raise RecipeInvalid(issues.sorted(), issues.source)


def unreachable_budgets(recipe: Recipe) -> list[Unreachable]:
    """Every mix ``by: tokens`` with a stated budget and ``on_short: error`` whose share for a
    source is more than ``max_epochs`` times what that source's input files could give."""
    chain = list(recipe.nodes) == ["main"]
    found = []
    for node_name, node in recipe.nodes.items():
        for index, step in enumerate(node.process):
            if step.operator != "mix":
                continue
            params = MixParams.model_validate(step.params)
            total = params.stated_total_tokens()
            if params.by != "tokens" or params.on_short != "error" or total is None:
                continue
            if any(_adds_text(s) for s in node.process[:index]):
                continue
            demand = source_demand(params.token_mix_spec(total))
            field = "target_tokens" if params.target_tokens is not None else "phases"
            loc: PathKey = ("process", index, "mix", field) if chain else (
                "nodes", node_name, "process", index, "mix", field)
            for source, asked in demand.items():
                epochs = params.epochs_of(source)
                urls = _input_files(recipe, source)
                if not asked or urls is None:
                    continue
                most = _bytes_at_least(urls, asked / epochs)
                if most * epochs < asked:
                    found.append(Unreachable(loc, *_explain(source, asked, total, most, epochs)))
    return found


def _explain(source: str, asked: float, total: float, most: int, epochs: float) -> tuple[str, str]:
    return (
        f"mix source {source!r} is asked for {asked:,.0f} of the {total:,.0f} tokens, but its input "
        f"files hold at most {most:,} bytes of text, and no tokenizer makes more tokens than bytes: even "
        f"{epochs:g} epochs (max_epochs) give at most {most * epochs:,.0f} tokens",
        "a budget the sources can fill: lower target_tokens or the source's weight, raise "
        "max_epochs, add data, or set on_short: rescale",
    )


def _adds_text(step: Step) -> bool:
    return registry.get(step.operator).adds_text


def _input_files(recipe: Recipe, source: str) -> list[str] | None:
    """The input files whose documents reach ``source`` (an input, a node, ``<node>.rejected``);
    None where the bound does not hold: a step on the way adds text, or an input is a committed
    dataset or Parquet."""
    name = source[: -len(REJECTED)] if source.endswith(REJECTED) and source not in recipe.inputs else source
    if name in recipe.inputs:
        spec = recipe.inputs[name]
        resolved = resolve_input(spec)
        return None if resolved.dataset is not None or resolved.format not in TEXT_FORMATS else list(resolved.urls)
    node = recipe.nodes[name]
    if any(_adds_text(step) for step in node.process):
        return None
    urls: list[str] = []
    for upstream in node.sources:
        found = _input_files(recipe, upstream)
        if found is None:
            return None
        urls += [u for u in found if u not in urls]
    return urls


def _bytes_at_least(urls: list[str], needed: float) -> int:
    """The decompressed size of ``urls`` when it is under ``needed``; otherwise a number of at
    least ``needed`` bytes they surely hold (files are read only as far as that takes)."""
    sizes = {}
    for url in urls:
        fs, path = storage.filesystem(url)
        sizes[url] = fs.size(path)
    packed = [url for url in urls if compression_of(url) is not None]
    total = sum(size for url, size in sizes.items() if url not in packed)
    surely = total + sum(max(0, int(sizes[url] * LEAST_EXPANSION) - HEADER_BYTES) for url in packed)
    if surely >= needed:
        return surely
    for url in packed:
        with fsspec.open(url, "rb") as raw:
            stream = decompressed(raw, url)
            while total < needed and (chunk := stream.read(CHUNK)):
                total += len(chunk)
        if total >= needed:
            break
    return total

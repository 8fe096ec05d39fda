"""``c4_quality_filter``: C4's heuristics (Raffel et al. 2020): removes bad lines, drops bad pages.

Parameters, defaults, rule order and reason codes are those of DataTrove's ``C4QualityFilter``,
so a FineWeb pipeline translates line by line. Unlike the other filters it also rewrites the
text of the documents it keeps: only the lines that pass the line rules remain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import pyarrow as pa
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators.text.words import WordSplitter, splitter
from recipeflow.operators.base import (
    OperatorParams,
    Rejection,
    Rule,
    RuleTableFilter,
    StepResult,
    split_by_decisions,
)
from recipeflow.operators.registry import register

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
ELLIPSIS = "..."
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


class C4QualityFilterParams(OperatorParams):
    split_paragraph: bool = Field(
        True, description="Apply the line rules to lines (C4); false = to sentences.")
    remove_citations: bool = Field(
        True, description="Remove Wikipedia-style citations: [1], [edit], [citation needed].")
    filter_no_terminal_punct: bool = Field(
        True, description="Remove lines that do not end in . ? ! \" ' (or end in an ellipsis).")
    min_num_sentences: int = Field(
        ge=-1,  # DataTrove's -1: no bound
        default=5, description="Drop documents with fewer sentences in the kept lines; -1 = no minimum.")
    min_words_per_line: int = Field(
        ge=-1,  # DataTrove's -1: no bound
        default=3, description="Remove lines with fewer words (split at whitespace); -1 = no minimum.")
    max_word_length: int = Field(
        ge=-1,  # DataTrove's -1: no bound
        default=1000, description="Remove lines holding a longer word (characters); -1 = no limit.")
    filter_lorem_ipsum: bool = Field(True, description='Drop documents containing "lorem ipsum".')
    filter_javascript: bool = Field(True, description='Remove lines mentioning "javascript".')
    filter_curly_bracket: bool = Field(True, description="Drop documents containing '{'.")
    filter_policy: bool = Field(
        True, description="Remove lines about cookies, terms of use or privacy policies.")
    language: str = Field("en", description="Language of the documents: decides sentence splitting.")


# Statistic names.
SENTENCES = "c4_sentences"
LINES = "c4_lines"
LINES_KEPT = "c4_lines_kept"
# Index of the line that made the page go, else null.
LOREM_IPSUM_LINE = "c4_lorem_ipsum_line"
CURLY_BRACKET_LINE = "c4_curly_bracket_line"


@dataclass
class _PageVerdict:
    """What the C4 rules make of one page."""

    text: str  # the kept lines, joined
    sentences: int
    lines: int
    lines_kept: int
    page_reason: str | None = None  # "lorem_ipsum" or "curly_bracket"
    bad_line: int | None = None


@register
class C4QualityFilter(RuleTableFilter):
    """Remove lines without terminal punctuation, too few words, javascript or cookie notices; drop pages with lorem ipsum, '{' or too few sentences (DataTrove's C4QualityFilter).

    Kept documents get the kept lines as their new text. Statistics: ``c4_sentences`` (in the
    kept lines), ``c4_lines``, ``c4_lines_kept``, ``c4_lorem_ipsum_line`` and
    ``c4_curly_bracket_line`` (the line that made the page go, else null). Reasons:
    ``lorem_ipsum``, ``curly_bracket``, ``too_few_sentences``.
    """

    name = "c4_quality_filter"
    version = "1"
    Params = C4QualityFilterParams

    def page_verdicts(self, texts: Sequence[str | None]) -> list[_PageVerdict]:
        words = splitter(self.params.language)
        return [self._page(text or "", words) for text in texts]

    def _page(self, text: str, words: WordSplitter) -> _PageVerdict:
        p = self.params
        if p.split_paragraph:
            lines = text.splitlines()
        else:
            lines = words.split_sentences(text)
        count_sentences = p.min_num_sentences != -1
        sentences = 0
        kept: list[str] = []
        for index, line in enumerate(lines):
            line = line.strip()
            line_words = line.split()
            if p.max_word_length != -1 and max(map(len, line_words), default=0) > p.max_word_length:
                continue
            if p.remove_citations:
                line = CITATION.sub("", line)
            if p.filter_no_terminal_punct and (
                not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)
            ):
                continue
            if len(line_words) < p.min_words_per_line:
                continue
            lower = line.lower()
            if p.filter_lorem_ipsum and "lorem ipsum" in lower:
                return _PageVerdict(text, sentences, len(lines), len(kept), "lorem_ipsum", index)
            if p.filter_javascript and "javascript" in lower:
                continue
            if p.filter_curly_bracket and "{" in line:
                return _PageVerdict(text, sentences, len(lines), len(kept), "curly_bracket", index)
            if p.filter_policy and any(s in lower for s in POLICY_SUBSTRINGS):
                continue
            if count_sentences:
                sentences += words.count_sentences(line) if p.split_paragraph else 1
            kept.append(line)
        joiner = "\n" if p.split_paragraph else " "
        return _PageVerdict(joiner.join(kept).strip(), sentences, len(lines), len(kept))

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        return self._stats(self.page_verdicts(batch.column(doc.TEXT).to_pylist()))

    @staticmethod
    def _stats(verdicts: Sequence[_PageVerdict]) -> dict[str, Sequence[Any]]:
        return {
            SENTENCES: [v.sentences for v in verdicts],
            LINES: [v.lines for v in verdicts],
            LINES_KEPT: [v.lines_kept for v in verdicts],
            LOREM_IPSUM_LINE: [v.bad_line if v.page_reason == "lorem_ipsum" else None
                               for v in verdicts],
            CURLY_BRACKET_LINE: [v.bad_line if v.page_reason == "curly_bracket" else None
                                 for v in verdicts],
        }

    def rules(self) -> list[Rule]:
        """DataTrove's order: a page-level bad line first, then too few sentences."""
        minimum = self.params.min_num_sentences
        return [
            Rule("lorem_ipsum", LOREM_IPSUM_LINE, fails=lambda line: line is not None),
            Rule("curly_bracket", CURLY_BRACKET_LINE, fails=lambda line: line is not None),
            Rule("too_few_sentences", SENTENCES, minimum, True, "min_num_sentences",
                 fails=lambda sentences: sentences < minimum),
        ]

    def annotate(self, batch: pa.Table) -> tuple[pa.Table, list[Rejection | None]]:
        """Statistics written into the batch, the kept documents' text rewritten, and the
        decisions (rejected documents keep their original text)."""
        verdicts = self.page_verdicts(batch.column(doc.TEXT).to_pylist())
        stats = self._stats(verdicts)
        decisions = self.decide(stats)
        originals = batch.column(doc.TEXT).to_pylist()
        texts = [v.text if d is None else original
                 for v, d, original in zip(verdicts, decisions, originals)]
        batch = doc.set_column(batch, doc.TEXT, pa.array(texts, type=pa.string()))
        for statistic, values in stats.items():
            # Typed: a batch where no page has a bad line must not give a column of nulls.
            batch = doc.set_column(batch, doc.stat_column(statistic), pa.array(values, pa.int64()))
        return batch, decisions

    def process(self, batch: pa.Table) -> StepResult:
        annotated, decisions = self.annotate(batch)
        return split_by_decisions(annotated, decisions, self.name)

"""``sentence_dedup``: DataTrove's ``SentenceDedup`` (C4's "discard all but one of any
three-sentence span occurring more than once"), as a barrier.

1. **signatures** (per shard): each document cut into sentences (DataTrove's spaCy
   sentencizer, reproduced by ``_words``), or into lines with ``split_sentences: false``; every
   run of ``n_sentences`` consecutive sentences, simplified as DataTrove simplifies text
   (lower case, no punctuation, numbers as 0, no diacritics, whitespace collapsed), is hashed
   (xxh3-64).
2. **resolve** (once): a span hash seen earlier in input order marks a duplicate span.
3. **apply** (per shard): the sentences of duplicate spans are removed (a removed run shorter
   than ``min_words_to_remove_span`` words stays); a changed document that keeps fewer than
   ``min_doc_words`` words or ``min_num_sentences`` sentences, or nothing, is dropped
   (reason ``sentence_dedup_too_short``).

DataTrove keeps the first occurrence in the order of (hash, document index within its file,
file); recipeflow keeps the first in input order; with one input file they agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, PositiveInt

from recipeflow.operators import document as doc
from recipeflow.operators.dedup.text import simplify
from recipeflow.operators.text.words import splitter
from recipeflow.operators.base import BarrierDecision, OperatorParams, Rejection, StepResult, split_by_decisions
from recipeflow.operators.dedup.deduplicator import Deduplicator
from recipeflow.operators.registry import register

SPAN_HASHES, SPAN_STARTS = "span_hashes", "span_starts"
# Working field carrying, per document, the indices of the sentences that start duplicate spans.
_DUPLICATE_SPANS = "__duplicate_spans"


class SentenceDedupParams(OperatorParams):
    n_sentences: PositiveInt = Field(3, description="Sentences per span compared.")
    split_sentences: bool = Field(True, description="Cut text into sentences; false: into lines.")
    min_doc_words: int = Field(
        50, description="A changed document with fewer words is dropped (0: never)."
    )
    min_num_sentences: int = Field(
        3, description="A changed document with fewer sentences is dropped (0: never)."
    )
    min_words_to_remove_span: int = Field(
        0, ge=0, description="A duplicate run of sentences with fewer words is kept (0: every run is removed)."
    )
    language: str = Field("en", description="Language of the sentence and word rules.")


@register
class SentenceDedup(Deduplicator):
    """Remove every repeat of a 3-sentence span, as DataTrove's SentenceDedup.

    Spans of ``n_sentences`` consecutive sentences are compared after DataTrove's text
    simplification; the first occurrence in input order stays, the sentences of every later
    one are cut out of their document. A document that changed and keeps fewer than
    ``min_doc_words`` words or ``min_num_sentences`` sentences is dropped (reason
    ``sentence_dedup_too_short``). DataTrove's parameters (``SentDedupConfig``) and defaults.
    """

    name = "sentence_dedup"
    version = "1"
    Params = SentenceDedupParams

    def _pieces(self, text: str) -> list[str]:
        """Consecutive pieces covering the text, one per sentence (or line)."""
        if self.params.split_sentences:
            return splitter(self.params.language).split_sentences(text)
        return text.splitlines()

    def _span_hashes(self, text: str) -> tuple[list[int], list[int]]:
        """(hash, index of the span's first sentence) of every non-blank span."""
        pieces = self._pieces(text)
        n = self.params.n_sentences
        if len(pieces) < n:
            return [], []
        simplified = [simplify(piece.strip()) for piece in pieces]
        hashes, starts = [], []
        for start in range(len(pieces) - n + 1):
            span = b" ".join(simplified[start : start + n])
            if span.strip():
                hashes.append(xxhash.xxh3_64_intdigest(span))
                starts.append(start)
        return hashes, starts

    def signatures(self, batch: pa.Table) -> pa.Table:
        found = [self._span_hashes(t or "") for t in batch.column(doc.TEXT).to_pylist()]
        return pa.table(
            {
                SPAN_HASHES: pa.array([h for h, _ in found], pa.list_(pa.uint64())),
                SPAN_STARTS: pa.array([s for _, s in found], pa.list_(pa.int32())),
            }
        )

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        sizes = [t.num_rows for t in signatures]
        hashes_parts, starts_parts, owners_parts = [], [], []
        offset = 0
        for table in signatures:
            hashes = table.column(SPAN_HASHES).combine_chunks()
            lengths = pc.list_value_length(hashes).fill_null(0).to_numpy(zero_copy_only=False)
            hashes_parts.append(pc.list_flatten(hashes).to_numpy(zero_copy_only=False).astype(np.uint64))
            starts_parts.append(
                pc.list_flatten(table.column(SPAN_STARTS).combine_chunks()).to_numpy(zero_copy_only=False).astype(np.int64)
            )
            owners_parts.append(np.repeat(np.arange(offset, offset + table.num_rows, dtype=np.int64), lengths))
            offset += table.num_rows
        hashes = np.concatenate(hashes_parts) if hashes_parts else np.zeros(0, np.uint64)
        starts = np.concatenate(starts_parts) if starts_parts else np.zeros(0, np.int64)
        owners = np.concatenate(owners_parts) if owners_parts else np.zeros(0, np.int64)
        # First occurrence in input order (document, then sentence) keeps its span.
        order = np.lexsort((starts, owners, hashes))
        sorted_hashes = hashes[order]
        repeat = np.zeros(len(order), dtype=bool)
        repeat[1:] = sorted_hashes[1:] == sorted_hashes[:-1]
        duplicate_rows = order[repeat]
        per_document: dict[int, list[int]] = {}
        for owner, start in zip(owners[duplicate_rows].tolist(), starts[duplicate_rows].tolist()):
            per_document.setdefault(owner, []).append(start)
        self.last_summary = {"duplicate_spans": int(len(duplicate_rows)), "documents_with_duplicates": len(per_document)}
        decisions = []
        offset = 0
        for size in sizes:
            spans = [sorted(per_document.get(offset + row, [])) for row in range(size)]
            decisions.append(BarrierDecision(drop={}, fields={_DUPLICATE_SPANS: spans}))
            offset += size
        return decisions

    def remove_duplicate_spans(self, text: str, duplicate_starts: list[int]) -> str:
        """The text without the sentences of its duplicate spans (DataTrove's stage 3)."""
        p = self.params
        pieces = self._pieces(text)
        kept: list[str] = []
        removed: list[str] = []
        drop_until = 0
        starts = set(duplicate_starts)

        def close_removed_run() -> None:
            if removed and p.min_words_to_remove_span > 0:
                words = splitter(p.language).split("\n".join(removed))
                if len(words) < p.min_words_to_remove_span:
                    kept.extend(removed)
            removed.clear()

        for index, piece in enumerate(pieces):
            if index in starts:
                drop_until = index + p.n_sentences
            if index >= drop_until:
                close_removed_run()
                kept.append(piece)
            else:
                removed.append(piece)
        close_removed_run()
        joiner = "" if p.split_sentences else "\n"
        return joiner.join(kept).lstrip()

    def _too_short(self, text: str) -> str | None:
        p = self.params
        if not text:
            return "nothing left"
        if p.min_doc_words > 0:
            words = len(splitter(p.language).split(text))
            if words < p.min_doc_words:
                return f"words={words}"
        if p.min_num_sentences > 0:
            sentences = splitter(p.language).count_sentences(text)
            if sentences < p.min_num_sentences:
                return f"sentences={sentences}"
        return None

    def apply(self, batch: pa.Table, decision: BarrierDecision) -> StepResult:
        fields = dict(decision.fields or {})
        duplicate_spans: list[Any] = fields.pop(_DUPLICATE_SPANS, [[]] * len(batch))
        texts = batch.column(doc.TEXT).to_pylist()
        new_texts: list[str | None] = []
        decisions: list[Rejection | None] = []
        for text, starts in zip(texts, duplicate_spans):
            if not starts or text is None:
                new_texts.append(text)
                decisions.append(decision.drop.get(len(decisions)))
                continue
            filtered = self.remove_duplicate_spans(text, list(starts))
            if filtered == text:
                new_texts.append(text)
                decisions.append(None)
                continue
            why = self._too_short(filtered)
            if why is None:
                new_texts.append(filtered)
                decisions.append(None)
            else:  # the rejected document keeps its original text
                new_texts.append(text)
                decisions.append(Rejection("sentence_dedup_too_short", detail=f"{len(starts)} duplicate spans; {why}"))
        batch = doc.set_column(batch, doc.TEXT, pa.array(new_texts, pa.string()))
        for name, values in fields.items():
            batch = doc.set_column(batch, name, values)
        return split_by_decisions(batch, decisions, self.name)

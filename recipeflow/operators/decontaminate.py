"""``decontaminate``: find benchmark items (test sets) in the training documents.

Exact overlap: documents and items are normalized the same way (NFKC, lowercase, punctuation,
symbols and whitespace as word boundaries; see ``_decontamination_text``) and cut into word
n-grams (``n``, default 13 as GPT-3 and lighteval). An item is hit by a document holding at
least ``min(min_overlap, the item's number of distinct n-grams)`` of its n-grams; an item shorter
than ``n`` words is one gram (all its words). The index of the items' n-grams is built once
(``build_index`` / ``use_index``), exact (sorted 64-bit hashes) or a Bloom filter whose hits are
verified exactly.

Paraphrases (``paraphrase_check``): nearest items by a bag-of-n-grams cosine, confirmed by an
LLM judge (``_decontamination_paraphrase``). In drop mode, documents already matched exactly are
not sent to the judge (they are dropped anyway).

Modes: ``drop`` (reason ``contaminated``, the detail names the items), ``annotate`` (fields
``contaminated_by``, a list of ``"<benchmark>:<item id> (exact|paraphrase)"``, and
``contamination_ngrams``, the number of distinct benchmark n-grams found in the document, hit
or not), ``remove`` (matched spans cut out; kept when at least ``min_length`` characters remain,
else dropped with reason ``contaminated``; fields as in annotate).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.decontamination.benchmarks import (
    Benchmark,
    BenchmarkError,
    BenchmarkSpec,
    from_recipe_folder,
    load_benchmark,
)
from recipeflow.operators.decontamination.index import Index, build_index
from recipeflow.operators.decontamination.paraphrase import (
    Judge,
    ParaphraseParams,
    item_word_lists,
    nearest_items,
    vectors,
)
from recipeflow.operators.decontamination.text import (
    Normalization,
    NormalizationName,
    window_hashes,
    word_hashes,
    words_with_spans,
)
from recipeflow.operators.models.embedding_models import describe_encoder, encoder
from recipeflow.operators.models.fasttext_models import local_copy
from recipeflow.operators.base import (
    Filter,
    OperatorParams,
    Rejection,
    Resource,
    StepResult,
    split_by_decisions,
)
from recipeflow.operators.registry import register

CONTAMINATED_BY = "contaminated_by"
CONTAMINATION_NGRAMS = "contamination_ngrams"
REASON = "contaminated"
EXACT = "exact"
PARAPHRASE = "paraphrase"
_DETAIL_ITEMS = 20  # items named in a rejection's detail before "... and N more"


class DecontaminateParams(OperatorParams):
    benchmarks: dict[str, BenchmarkSpec] = Field(
        description="Benchmark name -> {path, fields, id_field}: where its items are and which "
        "fields make an item's text.")
    n: int = Field(13, ge=1, description="Words per n-gram (13: GPT-3, lighteval).")
    min_overlap: int = Field(
        1, ge=1, description="n-grams of an item a document must hold for the item to be hit "
        "(items with fewer distinct n-grams: all of them).")
    mode: Literal["drop", "annotate", "remove"] = Field(
        "drop", description="drop the document; annotate it (contaminated_by, "
        "contamination_ngrams); remove the matched spans from its text.")
    min_length: int = Field(
        100, ge=0, description="remove: keep a document when at least this many characters "
        "remain, else drop it.")
    index: Literal["exact", "bloom"] = Field(
        "exact", description="exact: a sorted array of 64-bit n-gram hashes; bloom: a Bloom "
        "filter (benchmark sets too large for memory), its hits verified exactly.")
    false_positive_rate: float = Field(
        0.01, gt=0.0, lt=1.0, description="bloom: the filter's false-positive rate (before "
        "verification; nothing unverified reaches a decision).")
    normalization: NormalizationName = Field(
        "recipeflow", description="How texts become words: recipeflow (NFKC, lowercase, split at "
        "every punctuation, symbol and space character) or datatrove (DataTrove's simplify_text "
        "and word tokenizer, to decide exactly as its NGramsDecontFilter).")
    language: str = Field(
        "en", description="datatrove normalization: the language of its word tokenizer.")
    paraphrase_check: ParaphraseParams | None = Field(
        None, description="{top_k, min_similarity, judge: {backend, model, ...}}: also catch "
        "rephrased items with an LLM judge.")

    @field_validator("benchmarks")
    @classmethod
    def _some_benchmark(cls, value):
        if not value:
            raise ValueError("benchmarks: name at least one benchmark set")
        return value

    @model_validator(mode="after")
    def _remove_needs_spans(self):
        if self.mode == "remove" and self.normalization != "recipeflow":
            raise ValueError(
                "mode remove cuts matches out by their place in the original text, which only the "
                "recipeflow normalization keeps (DataTrove's filter has no remove mode): use "
                "normalization: recipeflow, or mode drop or annotate")
        return self


@dataclass
class _Hit:
    item: int
    kind: str  # exact | paraphrase


@dataclass
class _Counts:
    """One benchmark's counts in this operator's life (one shard's task)."""

    documents: dict[str, int] = field(default_factory=lambda: {EXACT: 0, PARAPHRASE: 0, "any": 0})
    items: dict[str, set[str]] = field(default_factory=lambda: {EXACT: set(), PARAPHRASE: set()})


@register
class Decontaminate(Filter):
    """Find benchmark items in documents by n-gram overlap (exact or Bloom index) and, optionally, paraphrases judged by an LLM; drop, annotate or cut them out.

    Every benchmark file's sha256 is in the provenance (manifest and cache key). The report
    per benchmark (items, items hit, documents hit; exact and paraphrase) is kept per shard by
    :meth:`take_report` and summed by :func:`merge_reports`.
    """

    name = "decontaminate"
    version = "1"
    Params = DecontaminateParams

    def __init__(self, params=None):
        super().__init__(params)
        # Read and validated now: a missing file or field is an error before any work starts.
        self.benchmarks: dict[str, Benchmark] = {}
        for name, spec in self.params.benchmarks.items():
            self.benchmarks[name] = load_benchmark(name, spec)
        self.normalization = Normalization(self.params.normalization, self.params.language)
        self._index: Index | None = None
        self._index_path: str | None = None
        self._judge = Judge(self.params.paraphrase_check.judge) if self.params.paraphrase_check else None
        self._item_vectors = None
        self._counts: dict[str, _Counts] = {}

    @classmethod
    def resource_for(cls, params: DecontaminateParams) -> Resource:
        """gpu when the paraphrase judge runs vLLM in the task's process, else cpu (the planner
        asks every operator for its resource with its parameters)."""
        check = params.paraphrase_check
        return Resource.gpu if check is not None and check.judge.backend == "vllm" else Resource.cpu

    @classmethod
    def check_files(cls, params: DecontaminateParams) -> list[tuple[tuple[str, ...], str]]:
        """Every benchmark set read as a run would (validation calls this before any work):
        (field path under the step, problem) for each missing or empty file or missing field."""
        problems = []
        for name, spec in params.benchmarks.items():
            try:
                load_benchmark(name, from_recipe_folder(spec))
            except BenchmarkError as exc:
                problems.append((("benchmarks", name, exc.param), str(exc)))
        return problems

    @staticmethod
    def merge_reports(reports: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
        """Every shard's :meth:`take_report` summed (see the module's :func:`merge_reports`)."""
        return merge_reports(reports)

    # -- the index -------------------------------------------------------------------------------

    def index_key(self) -> str:
        """The index's content address: benchmark files' sha256, how items are made, the
        normalization, n and the backend's parameters (not min_overlap or mode: those decide,
        they do not change the index)."""
        p = self.params
        payload = {
            "format": 1,
            "normalization": self.normalization.key,
            "n": p.n,
            "backend": p.index,
            "false_positive_rate": p.false_positive_rate if p.index == "bloom" else None,
            "benchmarks": {
                name: {
                    "files": [sha for _, sha in self.benchmarks[name].files],
                    "fields": spec.fields, "id_field": spec.id_field, "separator": spec.separator,
                }
                for name, spec in sorted(p.benchmarks.items())
            },
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()

    def build_index(self) -> Index:
        return build_index(self.benchmarks, self.params.n, self.params.index, self.params.false_positive_rate,
                           self.normalization)

    def use_index(self, path: str | None) -> None:
        """Read the index from ``path`` (an :meth:`Index.save` file, e.g. the engine's cache
        entry under :meth:`index_key`); ``None``: build it in this process when first needed."""
        self._index_path = path
        self._index = None

    @property
    def index(self) -> Index:
        if self._index is None:
            if self._index_path is not None:
                # Object storage: copied once per machine, then memory-mapped like a local file.
                index = Index.load(local_copy(self._index_path))
                self._check_index(index)
                self._index = index
            else:
                self._index = self.build_index()
        return self._index

    def _check_index(self, index: Index) -> None:
        # Compared by content (sha256 in order), not by path: the engine may resolve paths
        # differently in the task that built the index.
        expected = {name: [sha for _, sha in b.files] for name, b in self.benchmarks.items()}
        found = {name: list(files.values()) for name, files in index.benchmark_files.items()}
        if (index.n, index.backend, index.normalization, found) != (
                self.params.n, self.params.index, self.normalization.key, expected):
            raise ValueError(
                f"decontaminate: the index file {self._index_path} was built for other benchmarks "
                f"or parameters (n={index.n}, index={index.backend}); build it again")

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "benchmarks": {
                name: {"files": b.sha256s, "items": len(b.item_ids)}
                for name, b in sorted(self.benchmarks.items())
            },
            "normalization": self.normalization.key,
            "index_key": self.index_key(),
        }
        if self._judge is not None:
            out["paraphrase_judge"] = self._judge.provenance()
            model = self.params.paraphrase_check.embedding_model
            if model is not None:  # the encoder's files decide which items are judged
                out["paraphrase_embedding"] = {"model": model, "sha256": describe_encoder(model).sha256}
        return out

    def use_cache(self, url: str | None) -> None:
        """The generation cache (judgments are cached there, as rephrase's generations)."""
        if self._judge is not None:
            self._judge.use_cache(url)

    # -- matching --------------------------------------------------------------------------------

    def _exact_matches(self, texts: Sequence[str], word_lists: Sequence[Sequence[str]] | None = None
                       ) -> list[dict[int, list[tuple[int, int]]]]:
        """Per document: distinct matched gram hash -> its windows (first word, length). With
        ``word_lists`` (remove mode), the documents' normalized words are given."""
        index = self.index
        if word_lists is None:
            hashes, doc_of_word = word_hashes(texts, normalization=self.normalization)
        else:
            hashes, doc_of_word = word_hashes([" ".join(w) for w in word_lists], prepared=True)
        lengths = np.bincount(doc_of_word, minlength=len(texts)).astype(np.int64)
        out: list[dict[int, list[tuple[int, int]]]] = [{} for _ in texts]
        word_base = np.concatenate([[0], np.cumsum(lengths)])
        for k in [index.n, *index.short_lengths]:
            window, starts = window_hashes(hashes, doc_of_word, k)
            found = index.member(window)
            for h, s in zip(window[found].tolist(), starts[found].tolist()):
                d = int(doc_of_word[s])
                out[d].setdefault(h, []).append((s - int(word_base[d]), k))
        return out

    def _hits(self, matched: dict[int, list[tuple[int, int]]]) -> tuple[list[int], set[int]]:
        """Items hit by one document's matched grams, and the grams belonging to them."""
        if not matched:
            return [], set()
        index = self.index
        grams = np.array(sorted(matched), dtype=np.uint64)
        which, items = index.postings_of(grams)
        # Each item's count of distinct matched grams (pairs are distinct: grams are).
        hit_items, counts = np.unique(items, return_counts=True)
        needed = np.minimum(self.params.min_overlap, index.item_gram_counts[hit_items])
        hit = hit_items[counts >= needed]
        if len(hit) == 0:
            return [], set()
        hit_grams = set(grams[np.unique(which[np.isin(items, hit)])].tolist())
        return hit.tolist(), hit_grams

    def _paraphrases(self, texts: Sequence[str], exclude: list[set[int]]) -> list[list[tuple[int, tuple[int, int]]]]:
        """Per document: (item, passage span) judged to be a rephrasing."""
        out: list[list[tuple[int, tuple[int, int]]]] = [[] for _ in texts]
        if self._judge is None:
            return out
        index = self.index
        check = self.params.paraphrase_check
        encode = None
        if check.embedding_model is not None:
            model = encoder(check.embedding_model)
            encode = model.encode  # unit vectors: cosine = dot
        if self._item_vectors is None:
            self._item_vectors = (encode(index.item_texts) if encode is not None
                                  else vectors(item_word_lists(index.item_texts)))
        candidates = nearest_items(texts, self._item_vectors, check, exclude, encode)
        if not candidates:
            return out
        pairs = [(index.item_texts[c.item], texts[c.doc][c.passage.start:c.passage.end]) for c in candidates]
        for candidate, answer in zip(candidates, self._judge.judge(pairs)):
            if answer:
                out[candidate.doc].append((candidate.item, (candidate.passage.start, candidate.passage.end)))
        return out

    def _analyse(self, texts: list[str]):
        """Every document's hits, distinct matched n-grams, and spans to cut (remove mode)."""
        spans_mode = self.params.mode == "remove"
        if spans_mode:
            with_spans = [words_with_spans(t) for t in texts]
            matches = self._exact_matches(texts, [w for w, _, _ in with_spans])
        else:
            matches = self._exact_matches(texts)
        hits: list[list[_Hit]] = []
        ngrams: list[int] = []
        cuts: list[list[tuple[int, int]]] = []
        exact_items: list[set[int]] = []
        for d, matched in enumerate(matches):
            items, hit_grams = self._hits(matched)
            hits.append([_Hit(i, EXACT) for i in items])
            exact_items.append(set(items))
            ngrams.append(len(matched))
            spans = []
            if spans_mode and hit_grams:
                _, starts, ends = with_spans[d]
                for g in hit_grams:
                    for first, k in matched[g]:
                        spans.append((starts[first], ends[first + k - 1]))
            cuts.append(spans)
        # In drop mode a document matched exactly is dropped anyway: the judge is not asked.
        judged_texts = [("" if items and self.params.mode == "drop" else t) for t, items in zip(texts, exact_items)]
        for d, found in enumerate(self._paraphrases(judged_texts, exact_items)):
            for item, span in found:
                hits[d].append(_Hit(item, PARAPHRASE))
                cuts[d].append(span)
        return hits, ngrams, cuts

    # -- Filter interface (analyze) ----------------------------------------------------------------

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        texts = [t or "" for t in batch.column(doc.TEXT).to_pylist()]
        hits, ngrams, _ = self._analyse(texts)
        return {CONTAMINATION_NGRAMS: ngrams, "contaminated_items": [len(h) for h in hits]}

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        if self.params.mode != "drop":
            return [None] * len(stats[CONTAMINATION_NGRAMS])
        return [Rejection(REASON, "contaminated_items", float(n)) if n else None
                for n in stats["contaminated_items"]]

    def thresholds(self) -> dict[str, dict[str, float]]:
        return {"contaminated_items": {"max": 0.0}}

    # -- processing --------------------------------------------------------------------------------

    def _label(self, hit: _Hit) -> str:
        index = self.index
        bench = index.benchmark_names[int(index.item_benchmark[hit.item])]
        return f"{bench}:{index.item_ids[hit.item]} ({hit.kind})"

    def process(self, batch: pa.Table) -> StepResult:
        texts = [t or "" for t in batch.column(doc.TEXT).to_pylist()]
        hits, ngrams, cuts = self._analyse(texts)
        self._count(hits)
        labels = [[self._label(h) for h in doc_hits] for doc_hits in hits]
        mode = self.params.mode
        decisions: list[Rejection | None] = []
        if mode == "drop":
            decisions = [Rejection(REASON, "contaminated_items", float(len(h)), _detail(l)) if h else None
                         for h, l in zip(hits, labels)]
            return split_by_decisions(batch, decisions, self.name)
        if mode == "remove":
            new_texts = []
            for text, spans, doc_labels in zip(texts, cuts, labels):
                if not spans:
                    new_texts.append(text)
                    decisions.append(None)
                    continue
                remaining = _cut(text, spans)
                new_texts.append(remaining)
                if len(remaining) < self.params.min_length:
                    decisions.append(Rejection(
                        REASON, "remaining_chars", float(len(remaining)),
                        f"min_length={self.params.min_length} after removing {_detail(doc_labels)}"))
                else:
                    decisions.append(None)
            batch = doc.set_column(batch, doc.TEXT, pa.array(new_texts, pa.string()))
        batch = doc.set_column(batch, CONTAMINATED_BY, pa.array(labels, pa.list_(pa.string())))
        batch = doc.set_column(batch, CONTAMINATION_NGRAMS, pa.array(ngrams, pa.int64()))
        if mode == "annotate":
            return StepResult(kept=batch)
        return split_by_decisions(batch, decisions, self.name)

    # -- the report --------------------------------------------------------------------------------

    def _count(self, hits: list[list[_Hit]]) -> None:
        index = self.index
        for doc_hits in hits:
            kinds_by_bench: dict[str, set[str]] = {}
            for hit in doc_hits:
                bench = index.benchmark_names[int(index.item_benchmark[hit.item])]
                counts = self._counts.setdefault(bench, _Counts())
                counts.items[hit.kind].add(index.item_ids[hit.item])
                kinds_by_bench.setdefault(bench, set()).add(hit.kind)
            for bench, kinds in kinds_by_bench.items():
                counts = self._counts[bench]
                for kind in kinds:
                    counts.documents[kind] += 1
                counts.documents["any"] += 1

    def take_report(self) -> dict[str, Any]:
        """What this operator found since the last call (e.g. one shard's task), in a form
        :func:`merge_reports` sums across shards: per benchmark the item count, documents hit
        (exact, paraphrase, any) and the ids of the items hit (a set: the same item found in
        two shards counts once)."""
        report = {}
        for name, b in sorted(self.benchmarks.items()):
            counts = self._counts.get(name, _Counts())
            report[name] = {
                "items": len(b.item_ids),
                "documents_hit": dict(counts.documents),
                "items_hit": {kind: sorted(ids) for kind, ids in counts.items.items()},
            }
        self._counts = {}
        return report


def merge_reports(reports: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """The per-benchmark table from every shard's :meth:`Decontaminate.take_report`: items,
    items hit (exact, paraphrase, any) and documents hit (exact, paraphrase, any)."""
    merged: dict[str, dict[str, Any]] = {}
    for report in reports:
        for name, part in report.items():
            entry = merged.setdefault(name, {"items": part["items"], "docs": {EXACT: 0, PARAPHRASE: 0, "any": 0},
                                             "ids": {EXACT: set(), PARAPHRASE: set()}})
            for kind, count in part["documents_hit"].items():
                entry["docs"][kind] += count
            for kind, ids in part["items_hit"].items():
                entry["ids"][kind].update(ids)
    return {
        name: {
            "items": e["items"],
            "items_hit_exact": len(e["ids"][EXACT]),
            "items_hit_paraphrase": len(e["ids"][PARAPHRASE]),
            "items_hit": len(e["ids"][EXACT] | e["ids"][PARAPHRASE]),
            "documents_hit_exact": e["docs"][EXACT],
            "documents_hit_paraphrase": e["docs"][PARAPHRASE],
            "documents_hit": e["docs"]["any"],
        }
        for name, e in sorted(merged.items())
    }


def _detail(labels: list[str]) -> str:
    shown = ", ".join(labels[:_DETAIL_ITEMS])
    more = len(labels) - _DETAIL_ITEMS
    return shown + (f" ... and {more} more" if more > 0 else "")


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without the (possibly overlapping) spans; each cut leaves one separator
    (a newline if the cut text held one, else a space), and the result is stripped."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, position = [], 0
    for start, end in merged:
        pieces.append(text[position:start])
        pieces.append("\n" if "\n" in text[start:end] else " ")
        position = end
    pieces.append(text[position:])
    return "".join(pieces).strip()


__all__ = ["Decontaminate", "DecontaminateParams", "BenchmarkError", "merge_reports", "build_index", "Index"]

"""Paraphrased benchmark items: nearest items by embedding (or bag-of-n-grams) cosine, then an
LLM judge.

1. Each document is cut into passages of ``passage_words`` normalized words (half-overlapping),
   because an item is short and a document may be long: a whole-document vector would dilute it.
2. Passages and items are vectors: with ``embedding_model``, a sentence encoder's unit vectors
   (the encoders of ``embed``: a paraphrase shares meaning, not words); otherwise hashed
   features (normalized word unigrams and bigrams, and character 4-grams inside words, hashed
   into 2**18 dimensions, sublinear tf, L2-normalized). An item's similarity to a document is
   its best cosine over the document's passages.
3. The ``top_k`` items with similarity >= ``min_similarity`` (not already matched exactly) are
   sent with their best passage to the judge (the LLM backends of ``rephrase``: transformers,
   vllm, openai), which answers yes/no to "does the passage contain this item, possibly
   rephrased?". Judgments are cached by (item, passage, prompt, model, sampling) in the
   generation cache, like ``rephrase``'s generations.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import xxhash
from pydantic import Field

from recipeflow.operators.decontamination.text import normalized_words, words_with_spans
from recipeflow.operators.models.generation_cache import GenerationCache
from recipeflow.operators.models.llm_backends import (
    Backend,
    Generation,
    Request,
    Sampling,
)
from recipeflow.operators.models.llm_models import local_model_path, model_fingerprint
from recipeflow.operators.models.llm_settings import LlmBackendSettings
from recipeflow.operators.base import OperatorParams

DIMENSIONS = 1 << 18

SYSTEM_PROMPT = (
    "You check training data for contamination with evaluation benchmarks. You answer with one "
    "word: yes or no."
)
USER_PROMPT = (
    "Benchmark item:\n<<<\n{item}\n>>>\n\nPassage from a training document:\n<<<\n{passage}\n>>>\n\n"
    "Does the passage contain this benchmark item, copied or rephrased (the same question, "
    "problem or facts in other words)? Answer yes or no."
)
PROMPT_SHA256 = hashlib.sha256((SYSTEM_PROMPT + "\0" + USER_PROMPT).encode("utf-8")).hexdigest()
_ANSWER = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


class JudgeParams(LlmBackendSettings):
    max_tokens: int = Field(8, ge=1, description="The answer is one word.")
    batch_size: int = Field(64, ge=1, description="Judgments per backend call.")
    cache_dir: str | None = Field(None, description="Where judgments are cached (default: the "
                                  "engine's generation cache; alone, nothing is cached).")


class ParaphraseParams(OperatorParams):
    top_k: int = Field(3, ge=1, description="Nearest items judged per document.")
    min_similarity: float = Field(
        0.3, ge=0.0, le=1.0, description="Least cosine (in the embedding space, or of bags of "
        "n-grams) for an item to be judged.")
    embedding_model: str | None = Field(
        None, description="Find the nearest items with this sentence encoder (as `embed`'s "
        "model: `all-minilm-l6-v2` bundled, or a folder); default: a bag-of-n-grams cosine, "
        "which needs no model but misses rephrasings that share few words.")
    passage_words: int = Field(
        160, ge=8, description="Documents are compared (and judged) in passages of this many "
        "normalized words, half-overlapping.")
    judge: JudgeParams


# -- similarity ------------------------------------------------------------------------------------


def _features(words: Sequence[str | bytes]) -> list[int]:
    text_words = [w if isinstance(w, str) else w.decode() for w in words]
    def digest(feature: str) -> int:
        return xxhash.xxh32_intdigest(feature.encode("utf-8"))

    out = [digest("w" + w) for w in text_words]
    out += [digest("b" + a + " " + b) for a, b in zip(text_words, text_words[1:])]
    for w in text_words:
        padded = f"<{w}>"
        out += [digest("c" + padded[i:i + 4]) for i in range(max(len(padded) - 3, 1))]
    return out


def vectors(word_lists: Sequence[Sequence[str | bytes]]):
    """L2-normalized hashed feature vectors, one row per word list (a scipy CSR matrix)."""
    from scipy import sparse  # only with a paraphrase check

    rows, cols = [], []
    for row, words in enumerate(word_lists):
        features = _features(words)
        rows.extend([row] * len(features))
        cols.extend(f & (DIMENSIONS - 1) for f in features)
    data = np.ones(len(rows), np.float32)
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(word_lists), DIMENSIONS))
    matrix.sum_duplicates()
    matrix.data = 1.0 + np.log(matrix.data)  # sublinear tf: a repeated word counts less
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.diags(1.0 / norms).dot(matrix).tocsr()


@dataclass
class Passage:
    doc: int
    start: int  # character span in the document's text
    end: int


def passages(texts: Sequence[str], passage_words: int) -> tuple[list[Passage], list[list[str]]]:
    """Half-overlapping windows of ``passage_words`` words of every document, with spans."""
    out, words_out = [], []
    step = max(passage_words // 2, 1)
    for doc, text in enumerate(texts):
        words, starts, ends = words_with_spans(text or "")
        if not words:
            continue
        first = 0
        while True:
            last = min(first + passage_words, len(words))
            out.append(Passage(doc, starts[first], ends[last - 1]))
            words_out.append(words[first:last])
            if last == len(words):
                break
            first += step
    return out, words_out


@dataclass
class Candidate:
    doc: int
    item: int
    similarity: float
    passage: Passage


def nearest_items(texts: Sequence[str], item_vectors, params: ParaphraseParams,
                  exclude: Sequence[set[int]], encode: Callable[[list[str]], np.ndarray] | None = None,
                  ) -> list[Candidate]:
    """Per document, its ``top_k`` items above ``min_similarity`` (best passage each), leaving
    out the items in ``exclude[doc]`` (already matched exactly). ``item_vectors``: from
    :func:`vectors`, or ``encode``'s unit vectors when ``encode`` (a sentence encoder) is given."""
    found, words = passages(texts, params.passage_words)
    if not found or item_vectors.shape[0] == 0:
        return []
    if encode is None:
        similarity = (vectors(words) @ item_vectors.T).tocoo()
        scored = zip(similarity.row.tolist(), similarity.col.tolist(), similarity.data.tolist())
    else:
        dense = encode([texts[p.doc][p.start:p.end] for p in found]) @ item_vectors.T
        rows, cols = np.nonzero(dense >= params.min_similarity)
        scored = zip(rows.tolist(), cols.tolist(), dense[rows, cols].tolist())
    best: dict[tuple[int, int], tuple[float, Passage]] = {}
    for p, item, value in scored:
        if value < params.min_similarity:
            continue
        passage = found[p]
        if item in exclude[passage.doc]:
            continue
        key = (passage.doc, item)
        if key not in best or value > best[key][0]:
            best[key] = (value, passage)
    by_doc: dict[int, list[Candidate]] = {}
    for (doc, item), (value, passage) in best.items():
        by_doc.setdefault(doc, []).append(Candidate(doc, item, value, passage))
    out = []
    for doc in sorted(by_doc):
        ranked = sorted(by_doc[doc], key=lambda c: (-c.similarity, c.item))
        out.extend(ranked[: params.top_k])
    return out


def item_word_lists(texts: Sequence[str]) -> list[list[str | bytes]]:
    return [normalized_words(t) for t in texts]


# -- the judge -------------------------------------------------------------------------------------


def parse_answer(text: str | None) -> bool | None:
    """yes -> True, no -> False, anything else -> None (counted, treated as no)."""
    match = _ANSWER.match(text or "")
    if match is None:
        return None
    return match.group(1).lower() == "yes"


class Judge:
    """Asks the LLM whether a passage contains an item; answers cached."""

    def __init__(self, params: JudgeParams):
        self.params = params
        self._backend: Backend | None = None
        self._cache = GenerationCache(params.cache_dir) if params.cache_dir else None
        self._memo: dict[str, Generation] = {}
        self.usage = {"judged": 0, "cached": 0, "unparsed": 0}

    def use_cache(self, url: str | None) -> None:
        if self.params.cache_dir is None:
            self._cache = GenerationCache(url) if url else None

    def model_identity(self) -> dict[str, Any]:
        if self.params.backend == "openai":
            return {"model": self.params.model}
        return {"model": self.params.model, "sha256": model_fingerprint(local_model_path(self.params.model))}

    def provenance(self) -> dict[str, Any]:
        return {"backend": self.params.backend, **self.model_identity(), "prompt_sha256": PROMPT_SHA256}

    def sampling(self) -> Sampling:
        return Sampling(temperature=0.0, top_p=1.0, max_tokens=self.params.max_tokens)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self.params.build_backend()
        return self._backend

    @staticmethod
    def messages(item: str, passage: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": USER_PROMPT.format(item=item, passage=passage)},
        ]

    def judge(self, pairs: Sequence[tuple[str, str]]) -> list[bool | None]:
        """For (item, passage) pairs: True (contains a rephrasing), False, or None (the answer
        was neither yes nor no, or the backend refused)."""
        sampling = self.sampling()
        fixed = {"prompt": PROMPT_SHA256, "model": self.model_identity(),
                 "sampling": [sampling.temperature, sampling.top_p, sampling.max_tokens]}
        keys, requests = [], {}
        for item, passage in pairs:
            messages = self.messages(item, passage)
            key = _hash({"kind": "decontamination-judge", "messages": messages, **fixed})
            keys.append(key)
            requests.setdefault(key, Request(messages, seed=0))
        results: dict[str, Generation] = {k: self._memo[k] for k in requests if k in self._memo}
        if self._cache is not None:
            missing = [k for k in requests if k not in results]
            for key, entry in self._cache.get_many(missing).items():
                results[key] = Generation(**entry)
        self.usage["cached"] += sum(1 for k in requests if k in results)
        todo = [k for k in requests if k not in results]
        for start in range(0, len(todo), self.params.batch_size):
            chunk = todo[start:start + self.params.batch_size]
            generations = self.backend.generate([requests[k] for k in chunk], sampling)
            fresh = {}
            for key, generation in zip(chunk, generations):
                if generation.transient:
                    raise RuntimeError(f"decontaminate: the paraphrase judge's {self.params.backend} "
                                       f"backend is unavailable ({generation.error}); retry the task")
                results[key] = generation
                self.usage["judged"] += 1
                if generation.error is None:
                    fresh[key] = {"text": generation.text, "prompt_tokens": generation.prompt_tokens,
                                  "completion_tokens": generation.completion_tokens,
                                  "finish_reason": generation.finish_reason}
            if self._cache is not None:
                self._cache.put_many(fresh)
        self._memo.update(results)
        answers = []
        for key in keys:
            answer = parse_answer(results[key].text)
            if answer is None:
                self.usage["unparsed"] += 1
            answers.append(answer)
        return answers


def _hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

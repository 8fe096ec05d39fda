"""``rephrase``: rewrite documents with an instruction-tuned LLM (WRAP, Nemotron-CC, REWIRE).

Each document is cut into chunks of about ``chunk_tokens`` tokens on line and sentence
boundaries; each chunk is sent to the model with the style's prompt; the cleaned outputs are
joined back in order. The result is either a new synthetic document beside the original
(``mode: beside``), instead of it (``instead``), or the original's text replaced (``replace``).

Synthetic documents carry ``synthetic: true``, ``parent_id`` (the document they were made
from), ``model``, ``prompt_sha256`` (of the template), ``style`` and ``generated_tokens``, and
keep their parent's metadata and lineage columns (input, file, record); the parent's
``stat_*`` columns, which describe the parent's text, are left empty.

Generations are cached by (chunk, language, model, template, sampling parameters) under the
dataset's ``cache/generations/`` folder, so re-runs and refreshes never generate the same chunk
twice, whatever the shards look like.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import fsspec
import pyarrow as pa
from pydantic import Field, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.text.chunking import join_chunks, split_into_chunks
from recipeflow.operators.models.generation_cache import GenerationCache
from recipeflow.operators.models.llm_backends import (
    Backend,
    Generation,
    Request,
    Sampling,
)
from recipeflow.operators.models.llm_models import local_model_path, model_fingerprint
from recipeflow.operators.models.llm_settings import LlmBackendSettings
from recipeflow.operators.models.rephrase_output import clean_output, word_count
from recipeflow.operators.models.rephrase_prompts import (
    ENGLISH,
    STYLES,
    PromptTemplate,
    custom_template,
)
from recipeflow.operators.base import Generator, Rejection, StepResult
from recipeflow.operators.registry import register

# Fields of generated documents.
SYNTHETIC = "synthetic"
PARENT_ID = "parent_id"
MODEL = "model"
PROMPT_SHA256 = "prompt_sha256"
STYLE = "style"
GENERATED_TOKENS = "generated_tokens"
CUSTOM = "custom"

Style = Literal[
    "wikipedia", "qa", "easy", "hard",  # WRAP
    "diverse_qa", "distill", "extract_knowledge", "knowledge_list",  # Nemotron-CC
    "guided_rewrite",  # REWIRE
]


class GenerationUnavailable(RuntimeError):
    """The backend failed in a way a later try may not (an endpoint down): the task fails, and
    what was generated before is in the cache for the retry."""


class RephraseParams(LlmBackendSettings):
    style: Style | None = Field(
        None, description="A built-in prompt: wikipedia, qa, easy, hard (WRAP); diverse_qa, "
        "distill, extract_knowledge, knowledge_list (Nemotron-CC); guided_rewrite (REWIRE). "
        "Default: wikipedia, unless `template` or `template_file` is given.")
    template: str | None = Field(
        None, description="A custom user prompt, with {text} where the chunk goes (and "
        "optionally {language}, the document language's English name).")
    template_file: str | None = Field(
        None, description="A file (any fsspec path) holding a custom user prompt, as `template`.")
    system_prompt: str | None = Field(
        None, description="The system message of a custom template (default: a generic one).")
    mode: Literal["beside", "instead", "replace"] = Field(
        "beside", description="beside: synthetic documents next to the originals; instead: "
        "only the synthetic documents; replace: the originals with their text rewritten.")

    chunk_tokens: int = Field(
        350, ge=16, description="Documents are cut on line/sentence boundaries into chunks of "
        "about this many tokens (estimated), each rewritten on its own.")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1, description="Most tokens generated per chunk.")
    repetition_penalty: float = Field(1.0, gt=0.0)
    stop: list[str] = Field(default_factory=list, description="Stop strings.")
    seed: int = Field(0, ge=0, description="Each chunk's seed is derived from this and the "
                      "chunk, so outputs do not depend on batching.")

    min_output_words: int = Field(
        10, ge=0, description="Drop outputs with fewer words (reason output_too_short).")
    min_length_ratio: float = Field(
        0.0, ge=0.0, description="Drop outputs with fewer words than this times the input's "
        "(reason output_too_short, statistic output_length_ratio).")
    drop_truncated: bool = Field(
        False, description="Drop outputs where a chunk hit max_tokens (reason truncated).")

    language: str | None = Field(
        None, description="The documents' language (ISO 639-1) when they have no `lang_field`; "
        "non-English documents get an instruction to answer in their language.")
    lang_field: str = Field("lang", description="Field holding each document's language "
                            "(language_id writes `lang`).")
    check_language: bool = Field(
        False, description="Identify the output's language (fastText lid.176) and drop outputs "
        "not in the document's language (reason wrong_language).")
    min_language_score: float = Field(0.5, ge=0.0, le=1.0, description="With check_language: "
                                      "the least score of the expected language.")

    batch_size: int = Field(
        256, ge=1, description="Chunks per backend call (vLLM batches them); generations are "
        "cached after each call.")
    cache_dir: str | None = Field(
        None, description="Where generations are cached (any fsspec path). Default: "
        "`cache/generations/` under the dataset root; the operator alone caches nothing.")

    @model_validator(mode="after")
    def _one_prompt(self):
        given = [n for n in ("style", "template", "template_file") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of style, template, template_file; got {', '.join(given)}")
        if self.template is not None:
            custom_template(self.template, self.system_prompt, "`template`")
        if self.system_prompt is not None and self.template is None and self.template_file is None:
            raise ValueError("system_prompt goes with a custom template or template_file")
        return self


@dataclass
class _Chunked:
    """One document's chunks, the request key of each, and its language."""

    row: int
    language: str | None
    texts: list[str]
    separators: list[str]
    keys: list[str]


@register
class Rephrase(Generator):
    """Rewrite documents with an LLM (WRAP, Nemotron-CC, REWIRE styles or your own prompt) into synthetic documents.

    Chunks of about ``chunk_tokens`` are rewritten one by one and joined back. Outputs are
    cleaned (preambles such as "Here is a paraphrased version:", wrapping quotes, closing
    offers of help), then dropped with a reason when too short (``output_too_short``), empty
    (``empty_output``), truncated (``truncated``, with ``drop_truncated``), in the wrong
    language (``wrong_language``, with ``check_language``) or refused by the endpoint
    (``generation_failed``).
    """

    name = "rephrase"
    version = "1"
    Params = RephraseParams

    def __init__(self, params=None):
        super().__init__(params)
        self._template: PromptTemplate | None = None
        self._backend: Backend | None = None
        self._cache: GenerationCache | None = (
            GenerationCache(self.params.cache_dir) if self.params.cache_dir else None
        )
        # Generated in this operator's life, and taken from the cache (for reports, benchmarks).
        self.usage = {"generated_chunks": 0, "cached_chunks": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def use_cache(self, url: str | None) -> None:
        if self.params.cache_dir is None:
            self._cache = GenerationCache(url) if url else None

    # -- what decides the output ---------------------------------------------------------------

    @property
    def template(self) -> PromptTemplate:
        if self._template is None:
            p = self.params
            if p.template is not None:
                self._template = custom_template(p.template, p.system_prompt, "`template`")
            elif p.template_file is not None:
                with fsspec.open(p.template_file, "rt", encoding="utf-8") as f:
                    text = f.read()
                self._template = custom_template(text, p.system_prompt, f"file {p.template_file}")
            else:
                self._template = STYLES[p.style or "wikipedia"]
        return self._template

    @property
    def style(self) -> str:
        p = self.params
        if p.template is not None or p.template_file is not None:
            return CUSTOM
        return p.style or "wikipedia"

    def model_identity(self) -> dict[str, Any]:
        """The model as part of the cache key: the weights' sha256 for local models (a new
        model behind the same path is a new model); the served name for an endpoint."""
        if self.params.backend == "openai":
            return {"model": self.params.model}
        return {"model": self.params.model, "sha256": model_fingerprint(local_model_path(self.params.model))}

    def sampling(self) -> Sampling:
        p = self.params
        return Sampling(p.temperature, p.top_p, p.max_tokens, p.repetition_penalty, tuple(p.stop))

    def provenance(self) -> dict[str, Any]:
        return {
            "backend": self.params.backend,
            **self.model_identity(),
            "style": self.style,
            "prompt_sha256": self.template.sha256,
        }

    # -- the backend -----------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self.params.build_backend()
        return self._backend

    # -- processing ------------------------------------------------------------------------------

    def _languages(self, batch: pa.Table) -> list[str | None]:
        if self.params.lang_field in batch.column_names:
            values = batch.column(self.params.lang_field).to_pylist()
            return [v or self.params.language for v in values]
        return [self.params.language] * len(batch)

    def _chunk(self, texts: Sequence[str | None], languages: Sequence[str | None]) -> tuple[list[_Chunked], dict[str, Request]]:
        """Every document's chunks and their keys, and one request per distinct key."""
        template, sampling = self.template, self.sampling()
        fixed = {
            "template": template.sha256,
            "model": self.model_identity(),
            "sampling": [sampling.temperature, sampling.top_p, sampling.max_tokens,
                         sampling.repetition_penalty, list(sampling.stop), self.params.seed],
        }
        documents, requests = [], {}
        for row, (text, language) in enumerate(zip(texts, languages)):
            chunks = split_into_chunks(text or "", self.params.chunk_tokens)
            keys = []
            for chunk in chunks:
                chunk_sha = hashlib.sha256(chunk.text.encode("utf-8")).hexdigest()
                messages = template.messages(chunk.text, language)
                key = _hash({"chunk": chunk_sha, "messages": messages, **fixed})
                keys.append(key)
                if key not in requests:
                    seed = int(_hash([self.params.seed, chunk_sha])[:8], 16) & 0x7FFFFFFF
                    requests[key] = Request(messages, seed)
            documents.append(_Chunked(row, language, [c.text for c in chunks], [c.separator for c in chunks], keys))
        return documents, requests

    def generate(self, requests: dict[str, Request]) -> dict[str, Generation]:
        """A generation per key: from the cache, else from the model (then cached)."""
        results: dict[str, Generation] = {}
        if self._cache is not None and requests:
            for key, entry in self._cache.get_many(requests).items():
                results[key] = Generation(**entry)
            self.usage["cached_chunks"] += len(results)
        missing = [k for k in requests if k not in results]
        transient: list[str] = []
        sampling = self.sampling()
        for start in range(0, len(missing), self.params.batch_size):
            keys = missing[start:start + self.params.batch_size]
            generations = self.backend.generate([requests[k] for k in keys], sampling)
            fresh = {}
            for key, generation in zip(keys, generations):
                results[key] = generation
                if generation.transient:
                    transient.append(generation.error or "unavailable")
                    continue
                self.usage["generated_chunks"] += 1
                self.usage["prompt_tokens"] += generation.prompt_tokens
                self.usage["completion_tokens"] += generation.completion_tokens
                if generation.error is None:
                    fresh[key] = _entry(generation)
            if self._cache is not None:
                self._cache.put_many(fresh)
        if transient:
            raise GenerationUnavailable(
                f"rephrase: {len(transient)} generations failed on the {self.params.backend} "
                f"backend, e.g. {transient[0]}; the {len(results) - len(transient)} others are "
                "cached, so a retry picks up from there"
            )
        return results

    def process(self, batch: pa.Table) -> StepResult:
        texts = batch.column(doc.TEXT).to_pylist()
        documents, requests = self._chunk(texts, self._languages(batch))
        generations = self.generate(requests)
        outputs: list[str | None] = []
        tokens: list[int] = []
        decisions: list[Rejection | None] = []
        for document, source in zip(documents, texts):
            text, decision = self._assemble(document, generations, source or "")
            outputs.append(text)
            tokens.append(sum(generations[k].completion_tokens for k in document.keys))
            decisions.append(decision)
        if self.params.check_language:
            decisions = self._check_languages(outputs, documents, decisions)
        return self._result(batch, outputs, tokens, decisions)

    def _assemble(self, document: _Chunked, generations: dict[str, Generation], source: str) -> tuple[str, Rejection | None]:
        if not document.keys:
            return "", Rejection("empty_input", detail="the document has no text to rephrase")
        chunk_generations = [generations[k] for k in document.keys]
        failed = next((g for g in chunk_generations if g.error is not None), None)
        if failed is not None:
            return "", Rejection("generation_failed", detail=failed.error[:500] if failed.error else None)
        cleaned = [clean_output(g.text or "") for g in chunk_generations]
        kept = [(t, s) for t, s in zip(cleaned, document.separators) if t]
        text = join_chunks([t for t, _ in kept], [s for _, s in kept])
        if not text:
            return "", Rejection("empty_output", "output_words", 0.0,
                                 detail="nothing was left after removing the model's preamble")
        if self.params.drop_truncated and any(g.finish_reason == "length" for g in chunk_generations):
            return text, Rejection("truncated", detail=f"a chunk reached max_tokens={self.params.max_tokens}")
        words = word_count(text)
        if words < self.params.min_output_words:
            return text, Rejection("output_too_short", "output_words", float(words),
                                   detail=f"min_output_words={self.params.min_output_words}")
        if self.params.min_length_ratio > 0:
            ratio = words / max(word_count(source), 1)
            if ratio < self.params.min_length_ratio:
                return text, Rejection("output_too_short", "output_length_ratio", ratio,
                                       detail=f"min_length_ratio={self.params.min_length_ratio}")
        return text, None

    def _check_languages(self, outputs: list[str | None], documents: list[_Chunked],
                         decisions: list[Rejection | None]) -> list[Rejection | None]:
        from recipeflow.operators.models.fasttext_models import load_model

        model = load_model()
        todo = [i for i, d in enumerate(decisions) if d is None]
        if not todo:
            return decisions
        labels, scores = model.predict([(outputs[i] or "").replace("\n", " ") for i in todo], k=-1)
        out = list(decisions)
        for i, doc_labels, doc_scores in zip(todo, labels, scores):
            expected = (documents[i].language or ENGLISH).split("_")[0]
            by_label = {label.removeprefix("__label__"): float(s) for label, s in zip(doc_labels, doc_scores)}
            score = min(by_label.get(expected, 0.0), 1.0)
            if score < self.params.min_language_score:
                top = max(by_label, key=by_label.get) if by_label else "?"
                out[i] = Rejection("wrong_language", "output_language_score", score,
                                   detail=f"expected {expected}, got {top}:{by_label.get(top, 0.0):.2f}")
        return out

    # -- output rows -----------------------------------------------------------------------------

    def _result(self, batch: pa.Table, outputs: list[str | None], tokens: list[int],
                decisions: list[Rejection | None]) -> StepResult:
        mode = self.params.mode
        ids = batch.column(doc.ID).to_pylist()
        generated = self._generated_rows(batch, outputs, tokens)
        ok = [i for i, d in enumerate(decisions) if d is None]
        bad = [i for i, d in enumerate(decisions) if d is not None]
        rejected = None
        if bad:
            rejected = doc.with_rejection(_take(generated, bad), self.name, [decisions[i] for i in bad])  # type: ignore[misc]
        if mode in ("instead", "replace"):
            return StepResult(kept=_take(generated, ok), rejected=rejected)
        originals = _with_fields(batch, {
            SYNTHETIC: pa.array([False] * len(batch), pa.bool_()),
            PARENT_ID: pa.nulls(len(batch), pa.string()),
            MODEL: pa.nulls(len(batch), pa.string()),
            PROMPT_SHA256: pa.nulls(len(batch), pa.string()),
            STYLE: pa.nulls(len(batch), pa.string()),
            GENERATED_TOKENS: pa.nulls(len(batch), pa.int64()),
        })
        # Each synthetic document right after its parent.
        both = pa.concat_tables([originals, generated.select(originals.column_names)])
        order = []
        for i in range(len(ids)):
            order.append(i)
            if decisions[i] is None:
                order.append(len(ids) + i)
        return StepResult(kept=_take(both, order), rejected=rejected, added=len(ok))

    def _generated_rows(self, batch: pa.Table, outputs: list[str | None], tokens: list[int]) -> pa.Table:
        """Every input row as its generated document (kept or not, sorted out by the caller)."""
        n = len(batch)
        ids = batch.column(doc.ID).to_pylist()
        if self.params.mode == "replace":
            new_ids = ids
        else:
            suffix = self.style if self.style != CUSTOM else f"{CUSTOM}-{self.template.sha256[:8]}"
            new_ids = [f"{i}#{suffix}" for i in ids]
        table = doc.set_column(batch, doc.ID, pa.array(new_ids, pa.string()))
        table = doc.set_column(table, doc.TEXT, pa.array([o or "" for o in outputs], pa.string()))
        for name in table.column_names:
            if name.startswith(doc.STAT_PREFIX):  # statistics of the parent's text, not this one
                table = doc.set_column(table, name, pa.nulls(n, table.schema.field(name).type))
        return _with_fields(table, {
            SYNTHETIC: pa.array([True] * n, pa.bool_()),
            PARENT_ID: pa.array(ids, pa.string()),
            MODEL: pa.array([self.params.model] * n, pa.string()),
            PROMPT_SHA256: pa.array([self.template.sha256] * n, pa.string()),
            STYLE: pa.array([self.style] * n, pa.string()),
            GENERATED_TOKENS: pa.array(tokens, pa.int64()),
        })


def _hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entry(generation: Generation) -> dict[str, Any]:
    return {
        "text": generation.text,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "finish_reason": generation.finish_reason,
    }


def _take(table: pa.Table, rows: list[int]) -> pa.Table:
    return table.take(pa.array(rows, pa.int64()))


def _with_fields(table: pa.Table, fields: dict[str, pa.Array]) -> pa.Table:
    for name, values in fields.items():
        table = doc.set_column(table, name, values)
    return table

"""``llm_grade``: grade documents with an LLM and a rubric prompt (FineWeb-Edu's annotation step).

The bundled rubric ``fineweb_edu`` is an additive 5-point educational-value prompt written
from the FineWeb-Edu paper's description (see ``data/llm_grade_rubrics.json`` for its
source); the model justifies its grade and ends with ``Educational score: N``. ``template``
/ ``template_file`` give your own prompt (``{text}`` where the document goes) with your own
``score_pattern`` (a regular expression whose first group is the number; the last match in the
answer counts).

Generation goes through ``rephrase``'s machinery, not a copy of it: the same backends
(transformers on the CPU, vLLM on the GPU pool, OpenAI-compatible endpoints), batching,
retries, and the generation cache (one entry per prompt, model sha256 and sampling
parameters), so a re-run or a refresh never grades a document twice.

Each kept document gets ``grade`` (a number), ``grade_model`` and ``grade_prompt_sha256``
(and ``grade_answer``, the model's whole answer, with ``keep_answer``). A document whose
answer has no grade is rejected (``unparsable_grade``, the answer's end in the detail), as
is one whose grade is outside ``[min_grade, max_grade]`` (``grade_out_of_range``) or whose
generation failed (``generation_failed``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from importlib import resources
from typing import Any, Literal

import fsspec
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.base import (
    Generator,
    Rejection,
    StepResult,
    split_by_decisions,
)
from recipeflow.operators.models.llm_backends import Generation, Request
from recipeflow.operators.models.llm_settings import LlmBackendSettings
from recipeflow.operators.models.rephrase_prompts import PromptTemplate, custom_template
from recipeflow.operators.registry import register
from recipeflow.operators.rephrase import Rephrase

RUBRICS_FILE = "llm_grade_rubrics.json"
GRADER_SYSTEM = "You are a careful grader of documents."
# The settings of the backend and sampling, passed as they are to rephrase's engine.
_ENGINE_FIELDS = (
    "backend", "model", "temperature", "top_p", "max_tokens", "repetition_penalty", "stop",
    "seed", "batch_size", "cache_dir", "tensor_parallel_size", "dtype", "max_model_len",
    "gpu_memory_utilization", "engine_options", "base_url", "api_key_env", "concurrency",
    "max_retries", "requests_per_minute", "timeout_s",
)


@functools.lru_cache(maxsize=1)
def rubrics() -> dict[str, dict[str, Any]]:
    """The bundled rubrics, by name."""
    text = resources.files("recipeflow.operators").joinpath("data", RUBRICS_FILE).read_text("utf-8")
    return json.loads(text)


class LlmGradeParams(LlmBackendSettings):
    rubric: Literal["fineweb_edu"] | None = Field(
        None, description="A bundled rubric: fineweb_edu (additive 0-5 educational value). "
        "Default: fineweb_edu unless `template` or `template_file` is given.")
    template: str | None = Field(
        None, description="Your own prompt, with {text} where the document goes.")
    template_file: str | None = Field(None, description="A file (any fsspec path) holding it.")
    system_prompt: str | None = Field(None, description="The system message of your template.")
    score_pattern: str | None = Field(
        None, description="Regular expression whose first group is the grade (last match "
        "counts). Default: the rubric's (`Educational score: N`).")
    min_grade: float | None = Field(None, description="Lowest valid grade (fineweb_edu: 0).")
    max_grade: float | None = Field(None, description="Highest valid grade (fineweb_edu: 5).")
    max_input_chars: int = Field(
        8000, ge=100, description="Documents are cut to this many characters (at a word "
        "boundary) before grading: graders judge an extract.")
    grade_field: str = Field("grade", description="Name of the grade field.")
    keep_answer: bool = Field(False, description="Also keep the model's answer "
                              "(`<grade_field>_answer`).")

    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0: greedy (reproducible grades).")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1, description="Room for the justification and the grade.")
    repetition_penalty: float = Field(1.0, gt=0.0)
    stop: list[str] = Field(default_factory=list)
    seed: int = Field(0, ge=0)
    batch_size: int = Field(256, ge=1, description="Prompts per backend call.")
    cache_dir: str | None = Field(None, description="Generation cache (default: the "
                                  "dataset's cache/generations/).")
    @field_validator("score_pattern")
    @classmethod
    def _one_group(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compiled = re.compile(value)
            except re.error as error:
                raise ValueError(f"score_pattern is not a regular expression: {error}") from error
            if compiled.groups < 1:
                raise ValueError("score_pattern needs a group around the number, e.g. "
                                 r"`Score: (\d+)`")
        return value

    @model_validator(mode="after")
    def _one_prompt(self):
        given = [n for n in ("rubric", "template", "template_file") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of rubric, template, template_file; got {', '.join(given)}")
        if self.template is not None:
            custom_template(self.template, self.system_prompt, "`template`")
            if self.score_pattern is None:
                raise ValueError("a custom template needs score_pattern (how to find the grade)")
        if self.template_file is not None and self.score_pattern is None:
            raise ValueError("a custom template_file needs score_pattern (how to find the grade)")
        return self


def parse_grade(answer: str, pattern: str) -> float | None:
    """The number of the last match of ``pattern`` in ``answer``; None when there is none."""
    matches = list(re.finditer(pattern, answer or ""))
    if not matches:
        return None
    try:
        return float(matches[-1].group(1))
    except (TypeError, ValueError):
        return None


def extract(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at the last whitespace before it."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


@register
class LlmGrade(Generator):
    """Grade documents with an LLM and a rubric (FineWeb-Edu's 0-5 educational prompt bundled) into a `grade` field.

    The model's answer is parsed for the grade (``Educational score: N`` for the bundled
    rubric, ``score_pattern`` for your own); documents whose answer has none, or whose grade
    is out of range, are rejected with the reason and the answer's end. Generations are
    cached (shared machinery with ``rephrase``).
    """

    name = "llm_grade"
    version = "1"
    Params = LlmGradeParams

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        # rephrase's engine: backends, batching, retries and the generation cache.
        self.engine = Rephrase({name: getattr(p, name) for name in _ENGINE_FIELDS})
        self._template: PromptTemplate | None = None

    def use_cache(self, url: str | None) -> None:
        self.engine.use_cache(url)

    @property
    def usage(self) -> dict[str, int]:
        return self.engine.usage

    # -- the prompt -------------------------------------------------------------------------

    @property
    def rubric(self) -> dict[str, Any]:
        p = self.params
        if p.template is None and p.template_file is None:
            return rubrics()[p.rubric or "fineweb_edu"]
        return {}

    @property
    def template(self) -> PromptTemplate:
        if self._template is None:
            p = self.params
            if p.template is not None:
                self._template = custom_template(p.template, p.system_prompt or GRADER_SYSTEM, "`template`")
            elif p.template_file is not None:
                with fsspec.open(p.template_file, "rt", encoding="utf-8") as f:
                    self._template = custom_template(f.read(), p.system_prompt or GRADER_SYSTEM,
                                                     f"file {p.template_file}")
            else:
                self._template = PromptTemplate(system=self.rubric["system"], user=self.rubric["user"])
        return self._template

    @property
    def score_pattern(self) -> str:
        return self.params.score_pattern or self.rubric["score_pattern"]

    @property
    def grade_range(self) -> tuple[float | None, float | None]:
        p, rubric = self.params, self.rubric
        low = p.min_grade if p.min_grade is not None else rubric.get("min_grade")
        high = p.max_grade if p.max_grade is not None else rubric.get("max_grade")
        return low, high

    def provenance(self) -> dict[str, Any]:
        return {"backend": self.params.backend, **self.engine.model_identity(),
                "rubric": self.params.rubric or ("fineweb_edu" if self.rubric else "custom"),
                "prompt_sha256": self.template.sha256, "score_pattern": self.score_pattern}

    # -- grading ----------------------------------------------------------------------------

    def requests(self, texts: list[str]) -> tuple[list[str], dict[str, Request]]:
        """A cache key per document, and one request per distinct key."""
        sampling = self.engine.sampling()
        fixed = {
            "operator": "llm_grade",
            "template": self.template.sha256,
            "model": self.engine.model_identity(),
            "sampling": [sampling.temperature, sampling.top_p, sampling.max_tokens,
                         sampling.repetition_penalty, list(sampling.stop), self.params.seed],
        }
        keys, requests = [], {}
        for text in texts:
            excerpt = extract(text, self.params.max_input_chars)
            text_sha = hashlib.sha256(excerpt.encode("utf-8")).hexdigest()
            messages = self.template.messages(excerpt, None)
            key = _hash({"text": text_sha, "messages": messages, **fixed})
            keys.append(key)
            if key not in requests:
                seed = int(_hash([self.params.seed, text_sha])[:8], 16) & 0x7FFFFFFF
                requests[key] = Request(messages, seed)
        return keys, requests

    def judge(self, generation: Generation) -> tuple[float | None, Rejection | None]:
        """The grade in one answer, or why there is none."""
        if generation.error is not None:
            return None, Rejection("generation_failed", detail=(generation.error or "")[:500])
        answer = generation.text or ""
        grade = parse_grade(answer, self.score_pattern)
        if grade is None:
            tail = " ".join(answer.split())[-200:]
            return None, Rejection("unparsable_grade", detail=f"no match of {self.score_pattern!r} "
                                   f"in the answer ending: {tail!r}")
        low, high = self.grade_range
        if (low is not None and grade < low) or (high is not None and grade > high):
            return grade, Rejection("grade_out_of_range", self.params.grade_field, grade,
                                    f"valid grades are {low}..{high}")
        return grade, None

    def process(self, batch: pa.Table) -> StepResult:
        p = self.params
        texts = [t or "" for t in batch.column(doc.TEXT).to_pylist()]
        keys, requests = self.requests(texts)
        generations = self.engine.generate(requests)
        grades, answers, decisions = [], [], []
        for key in keys:
            grade, decision = self.judge(generations[key])
            grades.append(grade)
            answers.append(generations[key].text)
            decisions.append(decision)
        n = len(batch)
        fields = {
            p.grade_field: pa.array(grades, pa.float64()),
            f"{p.grade_field}_model": pa.array([p.model] * n, pa.string()),
            f"{p.grade_field}_prompt_sha256": pa.array([self.template.sha256] * n, pa.string()),
        }
        if p.keep_answer:
            fields[f"{p.grade_field}_answer"] = pa.array(answers, pa.string())
        for name, values in fields.items():
            batch = doc.set_column(batch, name, values)
        return split_by_decisions(batch, decisions, self.name)


def _hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

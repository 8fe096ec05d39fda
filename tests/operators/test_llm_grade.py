"""``llm_grade``: the prompt, the grade parser and the cache, with the bundled SmolLM2 on the
CPU (transformers backend, offline) on two short documents."""

from __future__ import annotations

import pyarrow as pa
import pytest

from recipeflow.operators.base import Resource
from recipeflow.operators.llm_grade import LlmGrade, parse_grade, rubrics
from recipeflow.operators.models.llm_backends import Generation

MODEL = "smollm2-135m-instruct"
SMALL = {"model": MODEL, "max_tokens": 16, "max_input_chars": 300, "keep_answer": True}
TEXTS = [
    "Photosynthesis is the process by which green plants use sunlight, water and carbon "
    "dioxide to make glucose and oxygen. It takes place in the chloroplasts of leaf cells.",
    "Buy cheap watches now! Best prices online, free shipping, click here today.",
]
PATTERN = rubrics()["fineweb_edu"]["score_pattern"]


def batch(texts=TEXTS) -> pa.Table:
    return pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts})


@pytest.mark.parametrize("answer, grade", [
    ("The extract is basic. Educational score: 3", 3.0),
    ("Justification... **Educational Score:** 4", 4.0),
    ("educational score = 2.5", 2.5),
    ("Points: 1+1. Educational score: 1\nWait, Educational score: 2", 2.0),  # the last one counts
    ("I would give it a 3.", None),
    ("", None),
])
def test_grade_parser(answer, grade):
    assert parse_grade(answer, PATTERN) == grade


def test_judgement_reasons():
    op = LlmGrade({"model": MODEL})
    assert op.judge(Generation("ok. Educational score: 5")) == (5.0, None)
    grade, rejection = op.judge(Generation("Educational score: 7"))
    assert grade == 7.0 and rejection.reason == "grade_out_of_range"
    _, rejection = op.judge(Generation("It is quite good."))
    assert rejection.reason == "unparsable_grade" and "It is quite good." in rejection.detail
    _, rejection = op.judge(Generation(None, error="HTTP 400: bad request"))
    assert rejection.reason == "generation_failed"


def test_bundled_rubric_prompt_and_custom_templates():
    op = LlmGrade({"model": MODEL})
    assert op.resource is Resource.gpu
    keys, requests = op.requests(TEXTS)
    user = requests[keys[0]].messages[-1]["content"]
    assert TEXTS[0] in user and 'Educational score: <total points>' in user
    assert "{text}" not in user and "additive 5-point" in user
    custom = LlmGrade({"model": MODEL, "template": "Rate 1-3: {text}\nAnswer 'Score: N'.",
                       "score_pattern": r"Score: (\d)"})
    assert custom.requests(TEXTS)[0] != keys  # another prompt, other cache keys
    assert custom.provenance()["rubric"] == "custom"
    with pytest.raises(ValueError, match="needs score_pattern"):
        LlmGrade({"model": MODEL, "template": "Rate: {text}"})
    with pytest.raises(ValueError, match="group around the number"):
        LlmGrade({"model": MODEL, "template": "Rate: {text}", "score_pattern": "Score: \\d"})
    with pytest.raises(ValueError, match="one of rubric, template"):
        LlmGrade({"model": MODEL, "rubric": "fineweb_edu", "template": "{text}", "score_pattern": "(1)"})


def test_grades_with_smollm2_and_cache(tmp_path):
    cache = str(tmp_path / "generations")
    first = LlmGrade({**SMALL, "cache_dir": cache})
    result = first.process(batch())
    assert first.usage["generated_chunks"] == 2 and first.usage["cached_chunks"] == 0
    kept = result.kept.to_pylist()
    rejected = result.rejected.to_pylist() if result.rejected is not None else []
    assert len(kept) + len(rejected) == 2
    for row in kept:  # a grade in range, parsed from the model's own answer
        assert 0 <= row["grade"] <= 5 and parse_grade(row["grade_answer"], PATTERN) == row["grade"]
        assert row["grade_model"] == MODEL and len(row["grade_prompt_sha256"]) == 64
    for row in rejected:  # or a reason that quotes the answer
        assert row["reject_reason"] in {"unparsable_grade", "grade_out_of_range"}
        assert row["grade_answer"] is not None
        if row["reject_reason"] == "unparsable_grade":
            assert " ".join(row["grade_answer"].split())[-40:] in row["reject_detail"]
    again = LlmGrade({**SMALL, "cache_dir": cache})
    repeat = again.process(batch())
    assert again.usage["generated_chunks"] == 0 and again.usage["cached_chunks"] == 2
    assert repeat.kept.equals(result.kept)
    assert (repeat.rejected is None) == (result.rejected is None)

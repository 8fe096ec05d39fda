"""Data-Juicer's own unit-test cases run through recipeflow's operators.

The cases (inputs, operator parameters, expected outputs) are read from Data-Juicer's test
files, kept as text under tests/data/datajuicer_tests/ (Apache-2.0, see the NOTICE there),
taken from github.com/modelscope/data-juicer at c07c2d79 (2025-10-17):
tests/ops/deduplicator/test_{document_simhash,document_minhash,ray_bts_minhash}_deduplicator.py,
tests/ops/filter/test_{stopwords,words_num,alphanumeric,perplexity}_filter.py and
tests/ops/mapper/test_{remove_header,remove_comments,remove_bibliography,expand_macro,
remove_words_with_incorrect_substrings}_mapper.py. Only their literals are read (ast); nothing
of Data-Juicer runs.

A case whose operator needs one of Data-Juicer's downloaded models (``zh.sp.model``,
``en.arpa.bin``, the pythia tokenizer) runs when the model is where Data-Juicer keeps it, and is
skipped otherwise (these machines cannot fetch it); the stand-in-model tests
(test_dj_models.py) cover that code.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from recipeflow.operators import registry
from recipeflow.operators.models.datajuicer_models import find_model, required_models
from tests.operators.barrier_runner import run_dedup
from tests.operators.peer_cases import DATA, POSITIONAL, PeerCase, peer_cases

# Every Data-Juicer test file kept under tests/data/datajuicer_tests: test_<operator>.py.txt tests
# Data-Juicer's operator of that name, which recipeflow registers under the same name.
FILES = sorted(p.name.removesuffix(".py.txt") for p in (DATA / "datajuicer_tests").glob("test_*.py.txt"))
_OPERATOR_SUFFIXES = ("Filter", "Mapper", "Deduplicator")
# Data-Juicer's scheduling arguments of every operator: no effect on decisions.
ENGINE_ARGUMENTS = {"batch_size", "num_proc", "work_dir", "accelerator", "text_key"}


def _cases() -> list[tuple[str, PeerCase]]:
    out = []
    for name in FILES:
        for case in peer_cases(f"datajuicer_tests/{name}.py.txt"):
            out.append((name.removeprefix("test_"), case))
    return out


CASES = _cases()


def _operator_params(case: PeerCase, operator: str) -> dict:
    """The keyword arguments of the case's (last) operator construction. Positional arguments
    take the names of the operator's parameters in order (recipeflow declares Data-Juicer's
    parameters in Data-Juicer's order)."""
    found = None
    for callee, kwargs in case.calls:
        if callee.endswith(_OPERATOR_SUFFIXES) and not callee.startswith("_"):
            found = dict(kwargs)
    if found is None:
        raise AssertionError(f"{case.source}: no Data-Juicer operator call found")
    names = list(registry.get(operator).Params.model_fields)
    for name, value in zip(names, found.pop(POSITIONAL, [])):
        found[name] = value
    return {k: v for k, v in found.items() if k not in ENGINE_ARGUMENTS}


def _skip_without_models(operator: str, params: dict) -> None:
    cls = registry.get(operator)
    try:
        filled = cls.Params.model_validate(params).model_dump()
    except Exception:  # invalid parameters: the case itself says what happens
        return
    for requirement in required_models(operator, filled):
        if requirement.kind != "hf_tokenizer" and requirement.path is None and not find_model(requirement.file_name):
            pytest.skip(f"needs Data-Juicer's model {requirement.file_name} (downloaded by Data-Juicer; not reachable here)")
        if requirement.kind == "hf_tokenizer" and requirement.path is None:
            pytest.skip(f"needs the Hugging Face tokenizer {requirement.file_name} in the Hugging Face cache")


# Cases that test Data-Juicer's machinery rather than an operator's decisions.
NOT_APPLICABLE = {
    "test_character_repetition_filter.py::CharacterRepetitionFilterTest.test_existing_stats":
        "tests that Data-Juicer reuses statistics already in __dj__stats__; recipeflow always computes them",
}


def _kept_rows(operator: str, params: dict, rows: list[dict], fields: list[str]) -> list[dict]:
    """The kept documents (their ``fields``), every field of the peer's rows passed through."""
    docs = [dict(row, id=str(i)) for i, row in enumerate(rows)]
    op_class = registry.get(operator)
    if op_class.kind.value == "deduplicator":
        kept, _ = run_dedup(operator, params, docs)
    else:
        kept = op_class(params).process(pa.Table.from_pylist(docs)).kept.to_pylist()
    return [{f: row.get(f) for f in fields} for row in kept]


@pytest.mark.parametrize("name, case", CASES, ids=[c.source for _, c in CASES])
def test_datajuicer_case(name, case):
    if case.source in NOT_APPLICABLE:
        pytest.skip("not applicable: " + NOT_APPLICABLE[case.source])
    operator, params = name, _operator_params(case, name)
    if case.expects_error:  # Data-Juicer raises; recipeflow refuses the parameters up front
        with pytest.raises(Exception):
            _kept_rows(operator, params, case.literals.get("ds_list", [{"text": "x"}]), ["text"])
        return
    _skip_without_models(operator, params)
    if "samples" in case.literals:  # mappers: each sample's text becomes its target
        op = registry.get(operator)(params)
        samples = case.literals["samples"]
        assert [op.map_text(s["text"]) for s in samples] == [s["target"] for s in samples]
        return
    expected = case.literals["tgt_list"]
    fields = sorted({f for row in expected for f in row}) or ["text"]
    assert _kept_rows(operator, params, case.literals["ds_list"], fields) == expected

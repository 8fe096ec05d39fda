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
from recipeflow.operators._dj_models import find_model, required_models
from tests.operators.barrier_runner import run_dedup
from tests.operators.peer_cases import PeerCase, peer_cases

# Data-Juicer's class -> recipeflow's operator.
OPERATORS = {
    "DocumentSimhashDeduplicator": "document_simhash_deduplicator",
    "DocumentMinhashDeduplicator": "document_minhash_deduplicator",
    "RayBTSMinhashDeduplicator": "ray_bts_minhash_deduplicator",
    "StopWordsFilter": "stopwords_filter",
    "WordsNumFilter": "words_num_filter",
    "AlphanumericFilter": "alphanumeric_filter",
    "PerplexityFilter": "perplexity_filter",
    "RemoveHeaderMapper": "remove_header_mapper",
    "RemoveCommentsMapper": "remove_comments_mapper",
    "RemoveBibliographyMapper": "remove_bibliography_mapper",
    "ExpandMacroMapper": "expand_macro_mapper",
    "RemoveWordsWithIncorrectSubstringsMapper": "remove_words_with_incorrect_substrings_mapper",
}
FILES = [
    "deduplicator/test_document_simhash_deduplicator",
    "deduplicator/test_document_minhash_deduplicator",
    "deduplicator/test_ray_bts_minhash_deduplicator",
    "filter/test_stopwords_filter",
    "filter/test_words_num_filter",
    "filter/test_alphanumeric_filter",
    "filter/test_perplexity_filter",
    "mapper/test_remove_header_mapper",
    "mapper/test_remove_comments_mapper",
    "mapper/test_remove_bibliography_mapper",
    "mapper/test_expand_macro_mapper",
    "mapper/test_remove_words_with_incorrect_substrings_mapper",
]
# Data-Juicer's scheduling arguments of every operator: no effect on decisions.
ENGINE_ARGUMENTS = {"batch_size", "num_proc", "work_dir", "accelerator", "text_key"}


def _cases() -> list[tuple[str, PeerCase]]:
    out = []
    for name in FILES:
        for case in peer_cases(f"datajuicer_tests/{name.split('/')[1]}.py.txt"):
            out.append((name, case))
    return out


CASES = _cases()


def _operator_call(case: PeerCase) -> tuple[str, dict]:
    for callee, kwargs in case.calls:
        if callee in OPERATORS:
            return OPERATORS[callee], {k: v for k, v in kwargs.items() if k not in ENGINE_ARGUMENTS}
    raise AssertionError(f"{case.source}: no Data-Juicer operator call found")


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


def _kept_texts(operator: str, params: dict, rows: list[dict]) -> list[str]:
    docs = [dict(id=str(i), text=row["text"]) for i, row in enumerate(rows)]
    op_class = registry.get(operator)
    if op_class.kind.value == "deduplicator":
        kept, _ = run_dedup(operator, params, docs)
        return [d["text"] for d in kept]
    result = op_class(params).process(pa.Table.from_pylist(docs))
    return result.kept.column("text").to_pylist()


@pytest.mark.parametrize("name, case", CASES, ids=[c.source for _, c in CASES])
def test_datajuicer_case(name, case):
    operator, params = _operator_call(case)
    if case.expects_error:  # Data-Juicer raises; recipeflow refuses the parameters up front
        with pytest.raises(Exception):
            _kept_texts(operator, params, case.literals.get("ds_list", [{"text": "x"}]))
        return
    _skip_without_models(operator, params)
    if "samples" in case.literals:  # mappers: each sample's text becomes its target
        op = registry.get(operator)(params)
        samples = case.literals["samples"]
        assert [op.map_text(s["text"]) for s in samples] == [s["target"] for s in samples]
        return
    expected = [row["text"] for row in case.literals["tgt_list"]]
    assert _kept_texts(operator, params, case.literals["ds_list"]) == expected

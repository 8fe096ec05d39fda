"""doc_stats, line_stats, word_stats: DataTrove's DocStats / LineStats / WordStats metrics as
fields, never dropping. Expected values are what DataTrove 0.10.1's extract_stats returned for
the same text (measured once; the operators were also compared with it on 40 pages of the
bundled handbook sample, all metrics equal)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from recipeflow.operators import registry

TEXT = "Hello World... This is ME.\n- item one\n- item one\n"
DATATROVE = {
    "doc_stats": {
        "length": 49, "white_space_ratio": 0.22448979591836735, "non_alpha_digit_ratio": 0.3469387755102041,
        "digit_ratio": 0.0, "uppercase_ratio": 0.10204081632653061, "elipsis_ratio": 0.061224489795918366,
        "punctuation_ratio": 0.12244897959183673,
    },
    "line_stats": {
        "n_lines": 4, "avg_line_length": 11.5, "short_line_ratio_chars_10": 0.75, "short_line_ratio_chars_30": 1.0,
        "long_line_ratio_chars_2000": 0.0, "long_line_ratio_chars_10000": 0.0,
        "lines_ending_with_terminal_mark_ratio": 0.25, "bullet_point_lines_ratio": 0.5,
        "line_duplicates": 0.25, "line_char_duplicates": 0.21739130434782608,
    },
    "word_stats": {
        "n_words": 13, "avg_word_length": 2.923076923076923, "avg_words_per_line": 4.333333333333333,
        "short_word_ratio_3": 0.6153846153846154, "long_word_ratio_7": 0.0, "type_token_ratio": 0.7692307692307693,
        "uppercase_word_ratio": 0.07692307692307693, "capitalized_word_ratio": 0.23076923076923078,
        "stop_word_ratio": 0.0,
    },
}


@pytest.mark.parametrize("name", sorted(DATATROVE))
def test_metrics_are_datatrove_s_and_nothing_is_dropped(name):
    batch = pa.table({"id": ["a", "b"], "text": [TEXT, ""]})
    result = registry.get(name)({}).process(batch)
    assert result.kept.num_rows == 2
    row = result.kept.to_pylist()[0]
    assert {k: row[f"stat_{k}"] for k in DATATROVE[name]} == pytest.approx(DATATROVE[name])


def test_line_stats_thresholds_name_their_fields():
    op = registry.get("line_stats")({"max_k_chars_per_line_tresholds": [5], "ignore_empty_lines": True})
    row = op.process(pa.table({"id": ["a"], "text": [TEXT]})).kept.to_pylist()[0]
    assert row["stat_short_line_ratio_chars_5"] == 0.0  # blank lines left out: none is that short
    assert row["stat_n_lines"] == 4  # DataTrove counts every line here

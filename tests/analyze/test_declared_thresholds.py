"""Filters whose parameters are not named min_*/max_* (DataTrove's) still get threshold lines:
their rule tables name the parameter behind each bound."""

from recipeflow.operators import registry


def test_datatrove_named_parameters_are_thresholds():
    repetition = registry.get("gopher_repetition_filter")().thresholds()
    assert repetition["gopher_rep_dup_line_frac"] == {"dup_line_frac": 0.3}
    fineweb = registry.get("fineweb_quality_filter")().thresholds()
    assert fineweb["fineweb_line_punct_ratio"] == {"line_punct_thr": 0.12}

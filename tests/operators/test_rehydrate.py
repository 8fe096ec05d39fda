"""rehydrate: FineWeb2's repeats by duplicate-cluster size ranges."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import ValidationError

from recipeflow.operators.rehydrate import Rehydrate, RehydrateParams, parse_range


def test_ranges_pick_copies_and_zero_removes_with_a_reason():
    op = Rehydrate(RehydrateParams(repeats={"1": 1, "2-4": 2, "5-100": 0, "101+": 3}))
    table = pa.table({"id": list("abcde"), "text": ["t"] * 5, "dup_cluster_size": [1, 3, 50, 200, None]})
    result = op.process(table)
    assert result.kept.column("id").to_pylist() == ["a", "b", "b#2", "d", "d#2", "d#3", "e"]
    assert result.added == 3
    [reason] = result.rejected.column("reject_reason").to_pylist()
    assert reason == "rehydrate_zero"


def test_parameters_and_missing_field_errors():
    assert parse_range("101+") == (101, float("inf")) and parse_range("2-4") == (2, 4)
    with pytest.raises(ValidationError, match="overlap"):
        RehydrateParams(repeats={"1-5": 2, "5-9": 3})
    with pytest.raises(ValidationError, match="not a range"):
        RehydrateParams(repeats={"many": 2})
    op = Rehydrate(RehydrateParams(field="cluster", repeats={"2+": 2}))
    with pytest.raises(KeyError, match="minhash_dedup"):
        op.process(pa.table({"id": ["a"], "text": ["t"]}))

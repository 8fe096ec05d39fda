"""Drops: a barrier's rejections held as columns, read back as the Rejections they stand for."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from recipeflow.engine.execute import decision_slice, decision_table
from recipeflow.operators.base import BarrierDecision
from recipeflow.operators.document import Rejection
from recipeflow.operators.drops import Drops


def test_rows_added_in_bulk_and_one_at_a_time_read_back_in_row_order_last_one_counting():
    drops = Drops({5: Rejection("a", "s", 1.0, "x"), 2: Rejection("b")})
    drops.add(np.array([7, 3]), "c", "st", [2.0, np.nan], ["d1", None])
    drops[5] = Rejection("z")
    assert list(drops.rows()) == [2, 3, 5, 7]
    assert drops == {
        2: Rejection("b"),
        3: Rejection("c", "st", None, None),  # NaN: no value
        5: Rejection("z"),  # given twice: the last one counts
        7: Rejection("c", "st", 2.0, "d1"),
    }
    assert drops.get(5) == Rejection("z") and drops.get(4) is None and 7 in drops and 4 not in drops
    assert drops.decisions(8) == [None, None, Rejection("b"), Rejection("c", "st", None, None), None,
                                  Rejection("z"), None, Rejection("c", "st", 2.0, "d1")]


def test_split_numbers_rows_within_each_shard():
    drops = Drops()
    details = pa.chunked_array([["d0", "d4"], ["d5", "d9"]])  # a column as read from files
    drops.add([0, 4, 5, 9], "r", values=[0.0, 4.0, 5.0, 9.0], detail=details)
    first, second, third = drops.split([4, 2, 4])
    assert first == {0: Rejection("r", None, 0.0, "d0")}
    assert second == {0: Rejection("r", None, 4.0, "d4"), 1: Rejection("r", None, 5.0, "d5")}
    assert third == {3: Rejection("r", None, 9.0, "d9")}


def test_a_decision_survives_its_file_and_a_slice_of_it():
    drops = Drops()
    drops.add([1, 3], "not_sampled", detail="seed=1")
    drops[4] = Rejection("missing_value", "quality")
    decision = BarrierDecision(drop=drops, fields={"bucket": [1, 2, 3, 4, 5, 6]}, repeats={0: 2})
    table = decision_table(decision, 6)
    assert decision_slice(table, 0, 6) == decision
    part = decision_slice(table, 3, 3)
    assert part.drop == {0: Rejection("not_sampled", None, None, "seed=1"), 1: Rejection("missing_value", "quality")}
    assert part.fields == {"bucket": [4, 5, 6]} and part.repeats is None


def test_a_dict_of_rejections_is_made_drops():
    decision = BarrierDecision(drop={1: Rejection("r")})
    assert isinstance(decision.drop, Drops) and decision.drop == {1: Rejection("r")}
    assert BarrierDecision().drop == {}

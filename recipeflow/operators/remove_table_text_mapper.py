"""``remove_table_text_mapper``: Data-Juicer's removal of plain-text tables."""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register

# Data-Juicer's pattern: after a line break, two or more lines of `columns` cells separated by a
# space, `|` or a tab.
_TABLE = r"(?<=\n)((\S+?)([ |\t](\S+?)){%d}\n+){2,}"


class RemoveTableTextMapperParams(OperatorParams):
    min_col: int = Field(2, ge=2, le=20, description="Fewest columns of a table removed.")
    max_col: int = Field(20, ge=2, le=20, description="Most columns of a table removed.")

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_col > self.max_col:
            raise ValueError(f"min_col ({self.min_col}) is more than max_col ({self.max_col})")
        return self


@register
class RemoveTableTextMapper(Mapper):
    """Remove plain-text tables of min_col to max_col columns, as Data-Juicer's remove_table_text_mapper.

    A table is two or more consecutive lines (after a line break) of the same number of cells
    separated by single spaces, ``|`` or tabs; tables of each column count from ``min_col`` to
    ``max_col`` are removed in turn, as Data-Juicer does.
    """

    name = "remove_table_text_mapper"
    version = "1"
    Params = RemoveTableTextMapperParams

    def __init__(self, params=None):
        super().__init__(params)
        self._patterns = [re.compile(_TABLE % i) for i in range(self.params.min_col - 1, self.params.max_col)]

    def map_text(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub("", text)
        return text

"""The shape shared by Data-Juicer's regular-expression mappers (clean_email_mapper,
clean_ip_mapper, clean_links_mapper): ``pattern`` (``None``: the operator's default) and
``repl`` (a ``re.sub`` replacement, ``""`` deletes), with Data-Juicer's names and defaults."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, model_validator

from recipeflow.operators.text.cleaning import (
    PatternReplacer,
    check_pattern,
    check_template,
    compile_datajuicer_pattern,
)
from recipeflow.operators.base import Mapper, OperatorParams


class PatternMapperParams(OperatorParams):
    """Each operator subclasses this with its ``default_pattern``."""

    default_pattern: ClassVar[str] = ""
    # A cheaper pattern, for ``re``, that matches wherever the default one matches (None: no
    # shortcut).
    default_prefilter: ClassVar[str | None] = None

    pattern: str | None = Field(
        None,
        description="Regular expression to find (Python syntax; `r'...'` marks are dropped as "
        "Data-Juicer does); null: the operator's default pattern.",
    )
    repl: str = Field(
        "", description="Replacement for each match, as in re.sub (\\1 is group 1); \"\" deletes."
    )

    @property
    def effective_pattern(self) -> str:
        return self.pattern if self.pattern is not None else self.default_pattern

    @model_validator(mode="after")
    def _pattern_and_repl_compile(self):
        check_pattern(self.effective_pattern)
        check_template(self.effective_pattern, self.repl)
        return self


class PatternMapper(Mapper):
    """Replace every match of the pattern with ``repl``."""

    Params = PatternMapperParams

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        prefilter = p.default_prefilter if p.pattern is None else None
        self._replacer = PatternReplacer(
            compile_datajuicer_pattern(p.effective_pattern),
            [p.repl],
            template=True,
            prefilter=re.compile(prefilter) if prefilter else None,
        )

    def map_text(self, text: str) -> str:
        return self._replacer.replace(text)

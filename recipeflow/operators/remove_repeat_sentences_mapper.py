"""``remove_repeat_sentences_mapper``: Data-Juicer's removal of repeated sentences within a document."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register

# Data-Juicer's sentence splitter: a break after ., 。, !, ！, ?, ？, six dots or two ellipses
# (unless a closing quote follows), and after such a mark followed by a closing quote.
_BREAKS = (
    (re.compile(r"([.。！!？\?])([^’”])"), r"\1\n\2"),
    (re.compile(r"(\.{6})([^’”])"), r"\1\n\2"),
    (re.compile("(\\…{2})([^’”])"), r"\1\n\2"),
    (re.compile(r"([.。!！？\?\.{6}\…{2}][’”])([^’”])"), r"\1\n\2"),
)
_SPECIAL = re.compile(r"[^a-zA-Z0-9\u4e00-\u9fa5\n\t ]")


def split_sentence(line: str) -> list[str]:
    for pattern, replacement in _BREAKS:
        line = pattern.sub(replacement, line)
    return line.split("\n")


class RemoveRepeatSentencesMapperParams(OperatorParams):
    lowercase: bool = Field(False, description="Compare sentences in lower case.")
    ignore_special_character: bool = Field(
        True, description="Compare sentences without characters other than CJK, letters, digits and spaces."
    )
    min_repeat_sentence_length: int = Field(
        2, description="Sentences shorter than this (after the above) are never removed."
    )
    tokenizer: str | None = Field(
        None,
        description="Data-Juicer's custom sentence splitter (a Python lambda): not supported, "
        "as recipeflow runs no code from recipes; null: Data-Juicer's built-in splitter.",
    )

    @field_validator("tokenizer")
    @classmethod
    def _no_code(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "tokenizer: recipeflow does not evaluate Python code given in a recipe; leave it "
                "null for Data-Juicer's built-in sentence splitter"
            )
        return value


@register
class RemoveRepeatSentencesMapper(Mapper):
    """Remove sentences that already appeared earlier in the same document, as Data-Juicer's remove_repeat_sentences_mapper.

    Lines are cut into sentences with Data-Juicer's splitter; a sentence is compared stripped,
    optionally in lower case and without special characters, and dropped when an equal one
    came before in the document (short ones always stay). Lines keep their line breaks.
    """

    name = "remove_repeat_sentences_mapper"
    version = "1"
    Params = RemoveRepeatSentencesMapperParams

    def map_text(self, text: str) -> str:
        p = self.params
        seen: set[str] = set()
        new_lines = []
        for line in text.split("\n"):
            kept = ""
            if line:
                for sentence in split_sentence(line):
                    key = sentence.strip()
                    if p.lowercase:
                        key = key.lower()
                    if p.ignore_special_character:
                        key = _SPECIAL.sub("", key)
                    if len(key) < p.min_repeat_sentence_length:
                        kept += sentence
                    elif key not in seen:
                        kept += sentence
                        seen.add(key)
            new_lines.append(kept)
        return "\n".join(new_lines)

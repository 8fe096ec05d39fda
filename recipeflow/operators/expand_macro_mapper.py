"""``expand_macro_mapper``: Data-Juicer's expansion of LaTeX macros without arguments."""

from __future__ import annotations

import re

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register

# Data-Juicer's patterns: \newcommand{\name}{value} (or \newcommand*) and \def\name{value},
# each alone at the end of a line; names of letters and digits.
_NEWCOMMAND = re.compile(r"\\\bnewcommand\b\*?\{(\\[a-zA-Z0-9]+?)\}\{(.*?)\}$", flags=re.MULTILINE)
_DEF = re.compile(r"\\def\s*(\\[a-zA-Z0-9]+?)\s*\{(.*?)\}$", flags=re.MULTILINE)


def macros_without_arguments(text: str) -> dict[str, str]:
    """name -> value of the document's argument-less macros, both escaped the way Data-Juicer
    escapes them (``unicode-escape``) to serve as a pattern and a replacement; a later
    definition of a name wins."""
    macros: dict[str, str] = {}
    for pattern in (_NEWCOMMAND, _DEF):
        for match in pattern.finditer(text):
            name = match.group(1).encode("unicode-escape").decode("utf-8")
            macros[name] = match.group(2).encode("unicode-escape").decode("utf-8")
    return macros


class ExpandMacroMapperParams(OperatorParams):
    pass


@register
class ExpandMacroMapper(Mapper):
    """Expand a LaTeX document's own macros that take no arguments, as Data-Juicer's expand_macro_mapper.

    Macros defined with ``\\newcommand{\\name}{value}`` or ``\\def\\name{value}`` are replaced
    by their values wherever the name is followed by a character that is not a letter or
    digit (definitions included, as in Data-Juicer). Macros with arguments are left alone.
    Where Data-Juicer would stop with a regular-expression error (a value that is not a valid
    replacement, such as one ending in a backslash), that macro is left unexpanded.
    """

    name = "expand_macro_mapper"
    version = "1"
    Params = ExpandMacroMapperParams

    def map_text(self, text: str) -> str:
        for name, value in macros_without_arguments(text).items():
            try:
                text = re.sub("(" + name + ")" + "([^a-zA-Z0-9])", value + r"\2", text)
            except re.error:
                continue
        return text

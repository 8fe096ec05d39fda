"""``clean_html_mapper``: Data-Juicer's HTML to text (selectolax/Lexbor), same output."""

from __future__ import annotations

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class CleanHtmlMapperParams(OperatorParams):
    pass


def _lexbor_parser():
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError:  # a clear message rather than a traceback deep in a worker
        raise ImportError(
            "clean_html_mapper needs selectolax (the HTML parser Data-Juicer uses): "
            "pip install selectolax==1.0.2"
        ) from None
    return LexborHTMLParser


@register
class CleanHtmlMapper(Mapper):
    """HTML to plain text as Data-Juicer's clean_html_mapper: list items become "*" lines, tags go.

    Uses the same parser (selectolax's Lexbor) and the same list handling, so the text is the
    same. For web pages, ``html_extract`` (main content, boilerplate removed) is usually better.
    """

    name = "clean_html_mapper"
    version = "1"
    Params = CleanHtmlMapperParams

    def __init__(self, params=None):
        super().__init__(params)
        self._parser = _lexbor_parser()

    def map_text(self, text: str) -> str:
        for tag, replacement in (("<li>", "\n*"), ("</li>", ""), ("<ol>", "\n*"), ("</ol>", "")):
            text = text.replace(tag, replacement)
        return self._parser(text).text()

"""``html_extract``: HTML (from WARC responses or an HTML field) to plain text."""

from __future__ import annotations

from typing import Sequence

import pyarrow as pa
from pydantic import Field
from resiliparse.extract.html2text import extract_plain_text

from recipeflow.operators import document as doc
from recipeflow.operators.base import (
    Mapper,
    OperatorParams,
    Rejection,
    StepResult,
    split_by_decisions,
)
from recipeflow.operators.registry import register


class HtmlExtractParams(OperatorParams):
    main_content: bool = Field(
        True, description="Keep only the main content: drop navigation, headers, footers, sidebars."
    )
    alt_texts: bool = Field(False, description="Include the alt text of images.")
    links: bool = Field(False, description="Include link targets after link texts.")
    list_bullets: bool = Field(True, description="Prefix list items with a bullet.")
    preserve_formatting: bool = Field(
        True, description="Keep paragraphs and line breaks (False gives one line per block)."
    )


@register
class HtmlExtract(Mapper):
    """Extract the readable text of HTML pages (Resiliparse); pages with no text are dropped.

    The document's ``text`` holds the HTML on input (as the WARC reader gives it) and the
    extracted text on output. A page from which nothing can be extracted is rejected with reason
    ``no_text`` rather than kept empty, as DataTrove's extractors do.
    """

    name = "html_extract"
    version = "1"
    Params = HtmlExtractParams

    def map_text(self, text: str) -> str:
        p = self.params
        return extract_plain_text(
            text,
            main_content=p.main_content,
            alt_texts=p.alt_texts,
            links=p.links,
            list_bullets=p.list_bullets,
            preserve_formatting=p.preserve_formatting,
        ).strip()

    def process(self, batch: pa.Table) -> StepResult:
        texts = [self.map_text(t or "") for t in batch.column(doc.TEXT).to_pylist()]
        extracted = doc.set_column(batch, doc.TEXT, pa.array(texts, type=pa.string()))
        decisions: Sequence[Rejection | None] = [
            None if t else Rejection("no_text", "text_length", 0.0) for t in texts
        ]
        return split_by_decisions(extracted, decisions, self.name)

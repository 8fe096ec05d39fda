"""``remove_words_with_incorrect_substrings_mapper``: Data-Juicer's removal of words that
contain unwanted substrings (URL pieces by default)."""

from __future__ import annotations

from pydantic import Field

from recipeflow.operators.text.dj_text import SPECIAL_CHARACTERS, keep_words, strip_characters
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class RemoveWordsWithIncorrectSubstringsMapperParams(OperatorParams):
    lang: str = Field("en", description="Language of the documents (names the sentencepiece model).")
    tokenization: bool = Field(
        False,
        description="Cut words with the sentencepiece model `<lang>.sp.model` (as Data-Juicer "
        "does) instead of at whitespace.",
    )
    substrings: list[str] | None = Field(
        None,
        description="Remove words containing any of these; null: Data-Juicer's default "
        '["http", "www", ".com", "href", "//"].',
    )
    sp_model_path: str | None = Field(
        None,
        description="The sentencepiece model for tokenization=true (recipeflow's own); null: "
        "`<lang>.sp.model` in Data-Juicer's model cache, fetched as Data-Juicer does.",
    )


_DEFAULT_SUBSTRINGS = ("http", "www", ".com", "href", "//")


@register
class RemoveWordsWithIncorrectSubstringsMapper(Mapper):
    """Remove words that contain any of ``substrings``, as Data-Juicer's remove_words_with_incorrect_substrings_mapper.

    A word is checked once stripped of special characters at its ends. Without tokenization,
    words lie between spaces, tabs and line breaks and the text is rejoined as Data-Juicer
    rejoins it (single spaces, empty lines gone). With ``tokenization``, words are the
    pieces of the language's sentencepiece model and, when any is removed, the kept pieces
    are joined without separators (Data-Juicer's behaviour).
    """

    name = "remove_words_with_incorrect_substrings_mapper"
    version = "1"
    Params = RemoveWordsWithIncorrectSubstringsMapperParams

    def __init__(self, params=None):
        super().__init__(params)
        substrings = self.params.substrings
        self._substrings = tuple(_DEFAULT_SUBSTRINGS if substrings is None else substrings)
        self._tokenizer = None
        if self.params.tokenization:
            from recipeflow.operators.models.datajuicer_models import load_datajuicer_sentencepiece

            self._tokenizer = load_datajuicer_sentencepiece(self.params.lang, self.params.sp_model_path)

    def _keep(self, word: str) -> bool:
        word = strip_characters(word, SPECIAL_CHARACTERS)
        return all(substring not in word for substring in self._substrings)

    def map_text(self, text: str) -> str:
        if self._tokenizer is None:
            return keep_words(text, self._keep)
        pieces = self._tokenizer.encode_as_pieces(text)
        words = [p.replace("▁", "") for p in pieces if self._keep(p.replace("▁", ""))]
        return "".join(words) if len(words) != len(pieces) else text

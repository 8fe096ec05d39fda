"""Shared machinery of the Data-Juicer-compatible filters.

Data-Juicer (1.6.1) filters compute a statistic per document and keep the document when the
statistic lies in ``[min, max]``. To give the *same* decisions, this module reproduces the
parts of Data-Juicer that decide a statistic's value:

* word splitting (on ``" "``, ``"\\n"`` and ``"\\t"`` only), word refinement (lower case,
  stripping Data-Juicer's special characters from both ends, word augmentation);
* Data-Juicer's special-character set (``data/datajuicer_special_characters.json``);
* the keep rule with ``min_closed_interval`` / ``max_closed_interval`` / ``reversed_range``;
* the value a statistic has when Data-Juicer decides: Data-Juicer stores statistics as JSON
  between computing and deciding, which rounds floats to 10 decimals and reads them back with
  pandas' fast (not correctly rounded) number parser, so ``0.3`` is decided as
  ``0.30000000000000004``. :func:`stored_statistic` reproduces that round trip exactly;
* stop-word / flagged-word files in Data-Juicer's format (``{language: [words]}``);
* model paths in Data-Juicer's model cache (``~/.cache/data_juicer/models``).

One module because it is Data-Juicer's shared text layer (statistics' JSON round trip, word lists, model paths, the range filter shape) that fourteen operators import as one.
"""

from __future__ import annotations

import functools
import json
import math
import string
from pathlib import Path
from typing import Any, Iterable, Sequence

import fsspec
import pyarrow as pa
from pydantic import Field, PositiveInt

from recipeflow.operators import document as doc
from recipeflow.operators.models.datajuicer_models import load_datajuicer_sentencepiece, load_sentencepiece
from recipeflow.operators.base import OperatorParams, Rejection
from recipeflow.operators.base import RangeFilter as BaseRangeFilter
from recipeflow.operators.text.text_stats import WordCache

DATA_DIR = Path(__file__).resolve().parents[1] / "data"  # recipeflow/operators/data
SPECIAL_CHARACTERS_FILE = DATA_DIR / "datajuicer_special_characters.json"


# --------------------------------------------------------------------------------------------
# Special characters
# --------------------------------------------------------------------------------------------


def _load_special_characters() -> frozenset[str]:
    """Data-Juicer's special characters that are single code points (the only ones that can
    match: Data-Juicer tests one character at a time)."""
    listed = json.loads(SPECIAL_CHARACTERS_FILE.read_text(encoding="utf-8"))
    characters = set(string.punctuation + string.digits + string.whitespace)
    for first, last in listed["other_characters"] + listed["emoji"]:
        characters.update(map(chr, range(first, last + 1)))
    return frozenset(characters)


SPECIAL_CHARACTERS: frozenset[str] = _load_special_characters()
# The same set as a str.strip() argument: stripping with it equals Data-Juicer's strip().
_STRIP_CHARACTERS = "".join(sorted(SPECIAL_CHARACTERS))


def count_special_characters(text: str) -> int:
    """How many characters of ``text`` are Data-Juicer special characters."""
    return sum(map(SPECIAL_CHARACTERS.__contains__, text))


# --------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------


def split_words(text: str) -> list[str]:
    """Data-Juicer's default word split: on spaces, newlines and tabs only (not on other
    whitespace such as ``\\r`` or no-break spaces), empty pieces dropped."""
    return [w for w in _pieces(text) if w]


def _pieces(text: str) -> list[str]:
    """The text cut on spaces, newlines and tabs, empty pieces kept."""
    return text.replace("\n", " ").replace("\t", " ").split(" ")


def _stripped(word: str) -> str:
    if not word:
        return word
    # Most words start and end with a letter: skip the (slower) strip for them.
    if word[0] in SPECIAL_CHARACTERS or word[-1] in SPECIAL_CHARACTERS:
        return word.strip(_STRIP_CHARACTERS)
    return word


_STRIPPED = WordCache(_stripped)


def strip_special(words: Iterable[str]) -> list[str]:
    """Words with special characters stripped from both ends; words left empty (or empty to
    begin with) are dropped."""
    return [word for word in map(_STRIPPED.__getitem__, words) if word]


def matching_ratio(words: list[str], vocabulary: frozenset[str]) -> float:
    """The share of ``words`` found in ``vocabulary`` (0 without words)."""
    if not words:
        return 0.0
    return min(sum(map(vocabulary.__contains__, words)) / len(words), 1.0)


def augment_words(words: list[str], group_sizes: Sequence[int], join_char: str) -> list[str]:
    """Data-Juicer's word augmentation (for languages without spaces between words, or with
    spaces between syllables): the words, then every run of ``size`` consecutive words joined
    with ``join_char``, for each size in turn."""
    out = list(words)
    for size in group_sizes:
        out.extend(join_char.join(words[i : i + size]) for i in range(len(words) - size + 1))
    return out


def refined_words(
    text: str,
    *,
    lower_case: bool,
    tokenizer: Any | None = None,
    use_words_aug: bool = False,
    words_aug_group_sizes: Sequence[int] = (2,),
    words_aug_join_char: str = "",
) -> list[str]:
    """The words Data-Juicer counts: split (by whitespace, or by a sentencepiece
    ``tokenizer``), optionally lower-cased, special characters stripped, optionally augmented.
    """
    if tokenizer is None:
        # Lower-casing the whole text equals lower-casing each word: the split characters are
        # neither cased nor case-ignorable, so they end every casing context (final sigma).
        words = _pieces(text.lower() if lower_case else text)  # strip_special drops empty ones
    else:
        words = tokenizer.encode_as_pieces(text)
        if lower_case:
            words = [w.lower() for w in words]
    words = strip_special(words)
    if use_words_aug:
        words = augment_words(words, words_aug_group_sizes, words_aug_join_char)
    return words


# Data-Juicer's word filters follow one another in a recipe and refine the same texts the same
# way (Data-Juicer shares the words through its context). Each chain step sees the texts the step
# before kept, so the words of the last batch, per way of refining, are kept for the next step.
_RECENT_WORDS: dict[tuple, dict[str, list[str]]] = {}


def refined_words_of(
    texts: Sequence[str],
    *,
    lower_case: bool,
    tokenizer: Any | None = None,
    use_words_aug: bool = False,
    words_aug_group_sizes: Sequence[int] = (2,),
    words_aug_join_char: str = "",
) -> list[list[str]]:
    """:func:`refined_words` of each text, reusing the previous call's words for the texts it
    had. The lists are shared between callers: read them, do not change them."""
    key = (lower_case, tokenizer, use_words_aug, tuple(words_aug_group_sizes), words_aug_join_char)
    recent = _RECENT_WORDS.get(key, {})
    words = []
    for text in texts:
        found = recent.get(text)
        if found is None:
            found = refined_words(
                text,
                lower_case=lower_case,
                tokenizer=tokenizer,
                use_words_aug=use_words_aug,
                words_aug_group_sizes=words_aug_group_sizes,
                words_aug_join_char=words_aug_join_char,
            )
        words.append(found)
    if len(_RECENT_WORDS) > 4:
        _RECENT_WORDS.clear()
    _RECENT_WORDS[key] = dict(zip(texts, words))
    return words


# --------------------------------------------------------------------------------------------
# Parameters and the keep rule
# --------------------------------------------------------------------------------------------


class DataJuicerFilterParams(OperatorParams):
    """The keep-rule parameters every Data-Juicer filter has (its ``Filter`` base class).

    Data-Juicer's ``text_key`` is not one: recipeflow operators read the ``text`` column, and a
    Data-Juicer recipe's ``text_keys`` chooses what the readers put there.
    """

    min_closed_interval: bool = Field(
        True, description="Keep documents whose statistic equals the minimum (>= rather than >)."
    )
    max_closed_interval: bool = Field(
        True, description="Keep documents whose statistic equals the maximum (<= rather than <)."
    )
    reversed_range: bool = Field(
        False,
        description="Keep the documents outside the range instead (Data-Juicer's rule: the "
        "closedness of both bounds flips too).",
    )


def keep_in_range(
    value: Any, minimum: float | None, maximum: float | None, params: DataJuicerFilterParams
) -> bool:
    """Data-Juicer's ``Filter.get_keep_boolean``. With ``reversed_range`` both bounds'
    closedness flips before the result is negated, as Data-Juicer does."""
    min_closed = params.min_closed_interval != params.reversed_range
    max_closed = params.max_closed_interval != params.reversed_range
    keep = True
    if minimum is not None:
        keep = keep and (value >= minimum if min_closed else value > minimum)
    if maximum is not None:
        keep = keep and (value <= maximum if max_closed else value < maximum)
    return not keep if params.reversed_range else keep


def range_rejection(
    value: Any,
    statistic: str,
    minimum: float | None,
    maximum: float | None,
    params: DataJuicerFilterParams,
) -> Rejection | None:
    """``None`` when Data-Juicer keeps the document, else why it is dropped:
    ``<statistic>_below_min``, ``<statistic>_above_max`` or, with ``reversed_range``,
    ``<statistic>_in_range``."""
    if keep_in_range(value, minimum, maximum, params):
        return None
    number = float(value)
    if params.reversed_range:
        reason = f"{statistic}_in_range"
    elif minimum is not None and not keep_in_range(value, minimum, None, params):
        reason = f"{statistic}_below_min"
    else:
        reason = f"{statistic}_above_max"
    return Rejection(reason, statistic, number, f"range [{minimum}, {maximum}]")


def range_decisions(
    values: Sequence[Any],
    statistic: str,
    minimum: float | None,
    maximum: float | None,
    params: DataJuicerFilterParams,
) -> list[Rejection | None]:
    """:func:`range_rejection` for every document."""
    return [range_rejection(v, statistic, minimum, maximum, params) for v in values]


# --------------------------------------------------------------------------------------------
# The JSON round trip of statistics
# --------------------------------------------------------------------------------------------

# pandas' ujson: 10 decimals when encoding, and a parser that scales the fraction digits by a
# table of powers of ten (not correctly rounded).
_ENCODE_DECIMALS = 10
_ENCODE_FIXED_MAX = 1e16 - 1
_ENCODE_FIXED_MIN = 1e-15
_DECODE_MAX_DECIMALS = 15
_DECODE_POW10 = (
    1.0, 0.1, 0.01, 0.001, 0.0001, 0.00001, 0.000001, 0.0000001, 0.00000001, 0.000000001,
    0.0000000001, 0.00000000001, 0.000000000001, 0.0000000000001, 0.00000000000001,
    0.000000000000001,
)  # fmt: skip


def _ujson_encode_float(value: float) -> str:
    """The text pandas' ujson writes for a float (``double_precision=10``)."""
    negative = value < 0
    magnitude = -value if negative else value
    sign = "-" if negative else ""
    if magnitude > _ENCODE_FIXED_MAX or (magnitude != 0.0 and magnitude < _ENCODE_FIXED_MIN):
        return sign + format(magnitude, f".{_ENCODE_DECIMALS - 1}e")
    whole = int(magnitude)
    scaled = (magnitude - whole) * 1e10
    fraction = int(scaled)
    remainder = scaled - fraction
    # ujson's rounding: up above one half; at exactly one half, up when odd or zero.
    if remainder > 0.5 or (remainder == 0.5 and (fraction == 0 or fraction & 1)):
        fraction += 1
    if fraction >= 10**_ENCODE_DECIMALS:
        fraction = 0
        whole += 1
    digits = f"{fraction:0{_ENCODE_DECIMALS}d}".rstrip("0") or "0"
    return f"{sign}{whole}.{digits}"


def _ujson_decode_float(text: str) -> float:
    """The float pandas' ujson reads from ``text`` (its fast, imprecise path)."""
    negative = text.startswith("-")
    mantissa, _, exponent = text.lstrip("-").partition("e")
    integer_part, _, fraction_part = mantissa.partition(".")
    fraction = 0.0
    decimals = 0
    for digit in fraction_part[:_DECODE_MAX_DECIMALS]:
        fraction = fraction * 10.0 + float(ord(digit) - 48)
        decimals += 1
    value = (float(int(integer_part)) + fraction * _DECODE_POW10[decimals]) * (
        -1.0 if negative else 1.0
    )
    if exponent:
        value *= math.pow(10.0, float(int(exponent)))
    return value


def stored_statistic(value: Any) -> Any:
    """A statistic as Data-Juicer decides on it: floats go through its JSON round trip;
    integers, strings and non-finite values are unchanged."""
    if isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value):
        return value
    return _ujson_decode_float(_ujson_encode_float(value))


# --------------------------------------------------------------------------------------------
# Word lists (stop words, flagged words)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def load_words_asset(words_dir: str | None, words_type: str) -> dict[str, frozenset[str]]:
    """Word lists by language, as Data-Juicer reads them: every ``*.json`` file in
    ``words_dir`` whose name contains ``words_type`` (``stopwords`` or ``flagged_words``),
    ``{language: [words]}``, lists of the same language concatenated; plus ``all``, the union of
    every language, unless a file defines it. ``words_dir`` is any fsspec folder; ``None`` means
    the lists bundled with recipeflow (see ``data/NOTICE``). Nothing is downloaded."""
    folder = str(DATA_DIR) if words_dir is None else words_dir
    fs, root = fsspec.core.url_to_fs(folder)
    if not fs.isdir(root):
        raise FileNotFoundError(f"{words_type} folder not found: {folder}")
    files = sorted(
        p for p in fs.ls(root, detail=False)
        if p.endswith(".json") and words_type in p.rsplit("/", 1)[-1]
    )  # fmt: skip
    lists: dict[str, list[str]] = {}
    for path in files:
        with fs.open(path, "r", encoding="utf-8") as f:
            try:
                loaded = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON ({e})") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a JSON object {{language: [words]}}")
        for language, words in loaded.items():
            lists.setdefault(language, []).extend(words)
    if not lists:
        raise FileNotFoundError(
            f"no {words_type} lists in {folder}: expected JSON files whose name contains "
            f"{words_type!r}, each {{language: [words]}} (Data-Juicer's format); "
            "recipeflow never downloads them"
        )
    out = {language: frozenset(words) for language, words in lists.items()}
    if "all" not in out:
        out["all"] = frozenset(w for words in lists.values() for w in words)
    return out


def words_for_language(words_dir: str | None, words_type: str, lang: str) -> frozenset[str]:
    """The ``words_type`` list of language ``lang``; a clear error when there is none."""
    lists = load_words_asset(words_dir, words_type)
    if lang not in lists:
        where = "the bundled lists" if words_dir is None else words_dir
        raise ValueError(
            f"no {words_type} for language {lang!r} in {where}; languages there: "
            f"{', '.join(sorted(lists))}"
        )
    return lists[lang]


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------


def texts_of(batch: pa.Table) -> list[str]:
    """The texts of a batch as Python strings (a missing text counts as empty)."""
    return ["" if t is None else t for t in batch.column(doc.TEXT).to_pylist()]


# --------------------------------------------------------------------------------------------
# The common shape of Data-Juicer's range filters
# --------------------------------------------------------------------------------------------


class RangeFilter(BaseRangeFilter):
    """A Data-Juicer range filter: the base range filter (:class:`~recipeflow.operators.base.RangeFilter`)
    with Data-Juicer's decision (closed or open interval, reversed range) on the statistic as
    Data-Juicer stores it (its JSON round trip). Subclasses set ``statistic`` and implement
    :meth:`measure` and :meth:`bounds`."""

    params: DataJuicerFilterParams

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        values = self.measure(texts_of(batch))
        return {self.statistic: [stored_statistic(v) for v in values]}

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        minimum, maximum = self.bounds()
        return range_decisions(stats[self.statistic], self.statistic, minimum, maximum, self.params)


class WordsParams(DataJuicerFilterParams):
    """Parameters of Data-Juicer's word-based filters."""

    lang: str = Field("en", description="Language of the documents.")
    tokenization: bool = Field(
        False,
        description="Split words with the sentencepiece model of `lang` (as Data-Juicer "
        "does) instead of on whitespace; needs the `sentencepiece` package and the model file.",
    )
    sp_model_path: str | None = Field(
        None,
        description="The sentencepiece model for tokenization=true (any fsspec path); null: "
        "`<lang>.sp.model` in Data-Juicer's model cache (~/.cache/data_juicer/models).",
    )


class WordsAugmentationParams(WordsParams):
    use_words_aug: bool = Field(
        False,
        description="Also count runs of consecutive words joined together (for languages "
        "such as Chinese or Vietnamese).",
    )
    words_aug_group_sizes: list[PositiveInt] = Field(
        [2], description="Sizes of the runs of words joined by augmentation."
    )
    words_aug_join_char: str = Field("", description="Joins the words of a run.")


def words_tokenizer(params: WordsParams) -> Any | None:
    """The sentencepiece model when ``tokenization`` is on, else ``None`` (whitespace)."""
    if not params.tokenization:
        return None
    if params.sp_model_path:
        return load_sentencepiece(params.sp_model_path, "sp_model_path")
    # `<lang>.sp.model` found, or fetched, where Data-Juicer keeps it.
    return load_datajuicer_sentencepiece(params.lang)


class WordListRatioFilter(RangeFilter):
    """Data-Juicer's word-list filters (stop words, flagged words): the share of a document's
    refined words that are in ``lang``'s list of ``word_list``, kept within bounds."""

    word_list: str  # "stopwords" or "flagged_words": the list's name and its files' name
    words_dir_param: str  # the parameter naming a folder of the user's own lists

    def __init__(self, params=None):
        super().__init__(params)
        # Load now: an unknown language or a bad folder is an error before any data is read.
        self._vocabulary()

    def _vocabulary(self) -> frozenset[str]:
        words_dir = getattr(self.params, self.words_dir_param)
        return words_for_language(words_dir, self.word_list, self.params.lang)

    def measure(self, texts: list[str]) -> list[Any]:
        p = self.params
        vocabulary = self._vocabulary()
        tokenizer = words_tokenizer(p)
        all_words = refined_words_of(
            texts,
            lower_case=True,
            tokenizer=tokenizer,
            use_words_aug=p.use_words_aug,
            words_aug_group_sizes=p.words_aug_group_sizes,
            words_aug_join_char=p.words_aug_join_char,
        )
        return [matching_ratio(words, vocabulary) for words in all_words]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_ratio, self.params.max_ratio

"""How Data-Juicer's near-duplicate deduplicators (MinHash, SimHash) cut a text into shingles.

Shared by ``document_minhash_deduplicator``, ``ray_bts_minhash_deduplicator`` and
``document_simhash_deduplicator``: lower-case first (``lowercase``), remove the matches of
``ignore_pattern`` (compiled with the ``regex`` module, as Data-Juicer does, so ``\\p{P}``
works), then tokens by ``tokenization`` and windows of ``window_size`` tokens.
"""

from __future__ import annotations

import functools
from typing import Literal

import regex

Tokenization = Literal["space", "punctuation", "character"]

# Data-Juicer's own pattern, in its own engine.
_PUNCTUATION = regex.compile(r"\p{P}")


@functools.lru_cache(maxsize=64)
def compile_ignore_pattern(pattern: str | None) -> regex.Pattern[str] | None:
    """``ignore_pattern`` compiled as Data-Juicer compiles it (``regex.compile``); a clear
    error naming the parameter when it does not compile."""
    if not pattern:
        return None
    try:
        return regex.compile(pattern)
    except regex.error as error:
        raise ValueError(
            f"ignore_pattern {pattern!r} is not a valid regular expression ({error}); it is "
            "compiled with the `regex` module as Data-Juicer does, so \\p{P} (any punctuation) "
            "and other Unicode classes work"
        ) from None


def shingle_list(
    text: str,
    tokenization: Tokenization,
    window_size: int,
    lowercase: bool,
    ignore: regex.Pattern[str] | None,
) -> list[bytes]:
    """Every window of ``window_size`` tokens, in order and with repeats, as UTF-8 bytes
    (MinHash takes the set, SimHash counts repeats)."""
    if lowercase:
        text = text.lower()
    if ignore is not None:
        text = ignore.sub("", text)
    if tokenization == "character":
        return [text[i : i + window_size].encode() for i in range(len(text) - window_size + 1)]
    if tokenization == "punctuation":
        tokens = _PUNCTUATION.split(text)  # empty tokens stay, as in Data-Juicer
    elif tokenization == "space":  # at spaces only (not line breaks), empty tokens dropped
        tokens = [t for t in text.split(" ") if t]
    else:
        raise ValueError(f"unknown tokenization {tokenization!r}")
    return [" ".join(tokens[i : i + window_size]).encode() for i in range(len(tokens) - window_size + 1)]

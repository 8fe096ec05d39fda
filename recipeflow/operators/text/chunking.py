"""Cutting a document into pieces of about N tokens on line and sentence boundaries, and
joining the pieces (or what an LLM made of them) back together.

Token counts are estimated without a tokenizer (the chunks, and so the generation cache keys,
must not depend on which backend or tokenizer runs): a word or a run of punctuation counts as
``TOKENS_PER_WORD`` tokens, each CJK or kana character as one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Sub-word tokenizers cut an English word into ~1.3 tokens on average.
TOKENS_PER_WORD = 1.3
_UNITS = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"  # one token each
    r"|[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+"  # a word
    r"|[^\w\s]+"  # punctuation
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_LINE_BREAK = re.compile(r"(\s*\n\s*)")
# A sentence ends at . ! ? followed by space, or right after a CJK full stop.
_SENTENCE_END = re.compile(r"((?<=[.!?…])\s+|(?<=[。！？]))")
_SPACE = re.compile(r"(\s+)")


def estimate_tokens(text: str) -> int:
    return math.ceil(_token_estimate(text))


def _token_estimate(text: str) -> float:
    cjk = len(_CJK.findall(text))
    return cjk + (len(_UNITS.findall(text)) - cjk) * TOKENS_PER_WORD


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, and the separator that followed it in the document."""

    text: str
    separator: str = ""


def split_into_chunks(text: str, chunk_tokens: int) -> list[Chunk]:
    """``text`` cut into consecutive chunks of at most about ``chunk_tokens`` tokens.

    Paragraphs and lines are packed whole while they fit; a line too long for one chunk is
    cut at sentence ends, and a sentence too long for one chunk at spaces. Whitespace between
    chunks becomes their separator, so ``join_chunks`` of the chunks gives ``text`` back
    (less leading and trailing whitespace).
    """
    pieces = _pieces(text.strip(), chunk_tokens)
    chunks: list[Chunk] = []
    current, current_tokens, separator = "", 0.0, ""
    for piece, piece_separator in pieces:
        tokens = _token_estimate(piece)
        if current and current_tokens + tokens > chunk_tokens:
            chunks.append(Chunk(current, separator))
            current, current_tokens = "", 0.0
        current = current + separator + piece if current else piece
        current_tokens += tokens
        separator = piece_separator
    if current:
        chunks.append(Chunk(current, ""))
    return chunks


def _pieces(text: str, chunk_tokens: int) -> list[tuple[str, str]]:
    """(piece, separator after it): lines, or sentences and word runs of over-long lines."""
    out: list[tuple[str, str]] = []
    for line, separator in _split_keeping(text, _LINE_BREAK):
        if estimate_tokens(line) <= chunk_tokens:
            out.append((line, separator))
            continue
        sentences = _split_keeping(line, _SENTENCE_END)
        for i, (sentence, sentence_separator) in enumerate(sentences):
            last = i == len(sentences) - 1
            sep = separator if last else sentence_separator
            if estimate_tokens(sentence) <= chunk_tokens:
                out.append((sentence, sep))
            else:
                words = _split_keeping(sentence, _SPACE)
                for j, (word, word_separator) in enumerate(words):
                    out.append((word, sep if j == len(words) - 1 else word_separator))
    return out


def _split_keeping(text: str, separator: re.Pattern) -> list[tuple[str, str]]:
    """``text`` split at ``separator`` (a pattern with one group): (part, separator after it)."""
    parts = separator.split(text)
    pairs = []
    for i in range(0, len(parts), 2):
        part = parts[i]
        after = parts[i + 1] if i + 1 < len(parts) else ""
        if part:
            pairs.append((part, after))
        elif pairs:  # an empty part between two separators: keep the whitespace
            pairs[-1] = (pairs[-1][0], pairs[-1][1] + after)
    return pairs


def join_chunks(texts: list[str], separators: list[str]) -> str:
    """Texts made from consecutive chunks joined as their chunks were: a paragraph break where
    the document had a blank line, a line break where it had one, else a space."""
    out = []
    for i, text in enumerate(texts):
        out.append(text)
        if i < len(texts) - 1:
            separator = separators[i]
            if separator.count("\n") >= 2:
                out.append("\n\n")
            elif "\n" in separator:
                out.append("\n")
            else:
                out.append(" " if separator or not _ends_cjk(text) else "")
    return "".join(out)


def _ends_cjk(text: str) -> bool:
    return bool(text) and bool(_CJK.match(text[-1]))

"""Cleaning what an instruction model wrote: the chatter around the rewritten text.

Models often open with a preamble ("Sure! Here is a paraphrased version of the text:", "**Rewritten
text:**"), wrap the answer in quotes or a code fence, or close with an offer of more help. Those
lines are not part of the document and are removed; the text in between is kept as it is.
"""

from __future__ import annotations

import re

_SPECIAL_TOKENS = re.compile(r"<\|[a-z_]+\|>|</?s>|\[/?INST\]")
# A first line that only announces the answer: short and ending in a colon, or a bare
# "Sure!", so that a real first sentence ("Sure enough, ...") is not taken for one.
_PREAMBLE_LINE = re.compile(
    r"""^\s*(?:[*#_"]+\s*)?
    (?:
        (?:sure|certainly|of\ course|okay|ok|absolutely|great|alright)[!.,]?(?:\s[^\n]{0,160}?:)?
      | (?:here\s+is|here's|here\s+are|below\s+is|below\s+are|the\s+following\s+is|this\s+is)\b[^\n]{0,160}?:
      | (?:paraphrased|rephrased|rewritten|revised|simplified|improved|rewrite|paraphrase|
           summary|answer|output|response|result)\b[^\n]{0,60}?:
    )\s*(?:[*_"]+)?\s*$""",
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)
# A label the model put on the same line as the text ("Rewritten text: The cat ...").
_INLINE_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:paraphrased|rephrased|rewritten|revised|simplified|improved)"
    r"(?:\s+(?:version|text|passage|document|article))?(?:\*\*)?\s*:\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)
_CLOSING_LINE = re.compile(
    r"\n\s*(?:i\s+hope\s+this|let\s+me\s+know|feel\s+free\s+to|if\s+you\s+(?:have|need|want)|"
    r"(?:this|the\s+above)\s+(?:version|rewrite|paraphrase|text)\s+(?:keeps|retains|maintains|"
    r"preserves|simplifies))[^\n]*\s*$",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s*```[a-z]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)
_QUOTES = {'"': '"', "“": "”", "«": "»", "'": "'"}


def clean_output(text: str) -> str:
    """``text`` without special tokens, preamble lines, inline labels, wrapping fences or
    quotes, and closing offers of help; repeated until nothing more comes off."""
    text = _SPECIAL_TOKENS.sub("", text)
    previous = None
    while text != previous:
        previous = text
        text = text.strip()
        first_line = text.split("\n", 1)
        if len(first_line) == 2 and _PREAMBLE_LINE.fullmatch(first_line[0]):
            text = first_line[1]
        elif len(first_line) == 1 and _PREAMBLE_LINE.fullmatch(text):
            text = ""  # nothing but a preamble
        text = _INLINE_LABEL.sub("", text, count=1)
        text = _CLOSING_LINE.sub("", text)
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1)
        text = _unquote(text.strip())
    return text.strip()


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        inner = text[1:-1]
        if text[0] not in inner:  # one quoted passage, not two quotations
            return inner
    return text


def word_count(text: str) -> int:
    return len(text.split())

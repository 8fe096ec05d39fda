"""Data-Juicer's mappers and document_deduplicator under their names: same parameters, same
output. Every expected text below is what py-data-juicer 1.6.1 returns for the same input."""

from __future__ import annotations

import gzip
import json
import re

import pyarrow as pa
import pytest
from pydantic import ValidationError

from recipeflow.operators import registry
from recipeflow.operators.text import cleaning
from recipeflow.operators.dedup.deduplicator import Deduplicator
from recipeflow.operators.document_deduplicator import DocumentDeduplicator
from tests.conftest import CORPORA

# (operator, parameters, input, Data-Juicer's output)
CASES = [
    ("clean_email_mapper", {}, "Contact: john.doe@example.com, Jane@Mail.com or a+b@x.org.",
     "Contact: , Jane@Mail.com or ."),
    ("clean_email_mapper", {"repl": "<EMAIL>"},
     "Contact: john.doe@example.com, Jane@Mail.com or a+b@x.org.",
     "Contact: <EMAIL>, Jane@Mail.com or <EMAIL>."),
    ("clean_ip_mapper", {},
     "from 192.168.1.1 and 2001:0db8:85a3:0000:0000:8a2e:0370:7334 and 999.1.1.1 to 10.0.0.254.",
     "from  and  and 9 to ."),
    ("clean_ip_mapper", {"pattern": r"r'(\d+)\.(\d+)\.\d+\.\d+'", "repl": r"\1.\2.x.x"},
     "host 192.168.1.1 up", "host 192.168.x.x up"),
    ("clean_links_mapper", {},
     "See https://www.debian.org/doc/ (official) or www.example.com, and "
     "ftp://ftp.debian.org/debian. Mail mailto:a@b.org!",
     "See  (official) or , and . Mail !"),
    ("clean_links_mapper", {"repl": "<LINK>"},
     "Read http://en.wikipedia.org/wiki/Debian_(disambiguation) now.", "Read <LINK> now."),
    ("clean_html_mapper", {},
     "<html><body><h1>Title</h1><p>Some <b>bold</b> text &amp; more.</p><ul><li>one</li>"
     "<li>two</li></ul><ol><li>x</li></ol></body></html>",
     "TitleSome bold text & more.\n*one\n*two\n*\n*x"),
    ("clean_copyright_mapper", {}, "/* Copyright (C) 2024 Foo */\nint main() {}",
     "\nint main() {}"),
    ("clean_copyright_mapper", {}, "# comment\n// more\n\n-- sql\nprint(1)\n# tail",
     "print(1)\n# tail"),
    ("clean_copyright_mapper", {}, "/* not a notice */\n# kept\ncode",
     "/* not a notice */\n# kept\ncode"),
    ("fix_unicode_mapper", {}, "The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows. schÃ¶n",
     "The Mona Lisa doesn't have eyebrows. schön"),
    ("fix_unicode_mapper", {"normalization": "nfkc"}, "ﬁle ｆｕｌｌ ½", "file full 1⁄2"),
    ("punctuation_normalization_mapper", {},
     "你好，世界。「引号」—破折号…！（注）：１２％ ► «quote» ’s",
     '你好,世界."引号" - 破折号...!(注):"２% - "quote" \'s'),
    ("whitespace_normalization_mapper", {},
     " \u3000Hello\u00a0world\tand\u200bmore \n next\u2003line\u0084 ",
     "Hello world and more \n next line "),
    ("remove_long_words_mapper", {"min_len": 2, "max_len": 10},
     "a short averyveryverylongword (parenthesized), fine\tx\n\n  second  line 12345678901,",
     "short fine\nsecond line"),
    ("remove_long_words_mapper", {}, "keeps  every\t\tword\n\n\nbut  rejoins  them ",
     "keeps every\tword\nbut rejoins them"),
]


@pytest.mark.parametrize(("name", "params", "text", "expected"), CASES)
def test_mapper_output_is_data_juicers(name, params, text, expected):
    operator = registry.get(name)(params)
    assert operator.map_text(text) == expected
    batch = pa.table({"id": ["a"], "text": [text]})
    assert operator.process(batch).kept.column("text").to_pylist() == [expected]


def test_defaults_and_parameter_names_are_data_juicers():
    assert registry.get("clean_email_mapper").Params().model_dump() == {"pattern": None, "repl": ""}
    assert registry.get("remove_long_words_mapper").Params().model_dump()["min_len"] == 1
    assert registry.get("fix_unicode_mapper").Params().normalization is None
    assert DocumentDeduplicator.Params().model_dump() == {
        "lowercase": False, "ignore_non_character": False
    }


@pytest.mark.parametrize(
    ("name", "params", "problem"),
    [
        ("clean_email_mapper", {"pattern": "([a-z"}, "not a valid regular expression"),
        ("clean_ip_mapper", {"repl": r"\2"}, "not a valid replacement"),
        ("fix_unicode_mapper", {"normalization": "NFX"}, "unknown normalization"),
        ("clean_links_mapper", {"patern": "x"}, "Extra inputs"),
    ],
)
def test_bad_parameters_are_refused_when_the_recipe_is_checked(name, params, problem):
    with pytest.raises(ValidationError, match=problem):
        registry.get(name).Params.model_validate(params)


# --- document_deduplicator -----------------------------------------------------------------


def run_barrier(operator: Deduplicator, shards: list[list[str]]) -> tuple[list[str], list[str]]:
    """The barrier's three phases over shards of texts: (kept ids, rejection details)."""
    batches = [
        pa.table({"id": [f"s{s}-{i}" for i in range(len(texts))], "text": texts})
        for s, texts in enumerate(shards)
    ]
    decisions = operator.resolve([operator.signatures(b) for b in batches])
    kept, details = [], []
    for batch, decision in zip(batches, decisions):
        result = operator.apply(batch, decision)
        kept += result.kept.column("id").to_pylist()
        if result.rejected is not None:
            details += result.rejected.column("reject_detail").to_pylist()
    return kept, details


TEXTS = [
    ["Hello, World 1!", "hello world", "  Hello, World 1!\n"],
    ["HELLO WORLD", "Hello World 2", "other text", "hello   world."],
]


def test_document_deduplicator_keeps_the_first_in_input_order():
    kept, details = run_barrier(DocumentDeduplicator(), TEXTS)
    # Data-Juicer compares stripped texts: the third text repeats the first.
    assert kept == ["s0-0", "s0-1", "s1-0", "s1-1", "s1-2", "s1-3"]
    assert details == ["duplicate_of=s0-0"]


def test_document_deduplicator_lowercase_and_ignore_non_character():
    kept, _ = run_barrier(DocumentDeduplicator({"lowercase": True}), TEXTS)
    assert kept == ["s0-0", "s0-1", "s1-1", "s1-2", "s1-3"]
    kept, details = run_barrier(
        DocumentDeduplicator({"lowercase": True, "ignore_non_character": True}), TEXTS
    )
    assert kept == ["s0-0", "s1-2"]  # without spaces, digits and punctuation: "helloworld"
    assert set(details) == {"duplicate_of=s0-0"}


def test_non_characters_are_data_juicers():
    key = DocumentDeduplicator({"ignore_non_character": True}).comparison_key
    # \x1c-\x1f are not whitespace for Data-Juicer's `regex`; Unicode digits and ASCII
    # punctuation go; other punctuation stays.
    assert key("a\u00a0b\u3000c\x1cd٣e\U00016D70f!g«h") == "abc\x1cdefg«h"


# Texts at the prefilters' edges: case-folded letters after a scheme, "www" in capitals,
# addresses of non-ASCII digits and letters, one colon or dot short of an address.
PREFILTER_EDGES = [
    "go to \u212a://x", "ſ:ſ", "see WwW.example.com", "HTTP:%20", "a.Bc/ and a.\u212ac/",
    "\u0661:\u0662:\u0663:\u0664:\u0665:\u0666:\u0667:\u0668", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8",
    "1.2.3", "1.2.3.4", "255.255.255.255.255", "fe80:0:0:0:0:0:0:1%eth0", "a:b:c:d:e:f:0:1",
]


@pytest.mark.parametrize(("pattern", "prefilter"), [
    ("DJ_LINK_PATTERN", "DJ_LINK_PREFILTER"), ("DJ_IP_PATTERN", "DJ_IP_PREFILTER"),
])
def test_prefilters_match_wherever_the_data_juicer_pattern_does(pattern, prefilter):
    """A prefilter may let a text through that has no match, never skip one that has."""
    full = cleaning.compile_datajuicer_pattern(getattr(cleaning, pattern))
    cheap = re.compile(getattr(cleaning, prefilter))
    with gzip.open(CORPORA / "debian-handbook.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(1500), f)]
    lines = [line for text in texts for line in text.split("\n") if full.search(line)]
    for text in texts + lines + PREFILTER_EDGES:
        if full.search(text):
            assert cheap.search(text), text
    assert sum(1 for t in texts if full.search(t)) >= 50  # the corpus has addresses to find

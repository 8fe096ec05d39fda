"""Native cleaning operators: url_filter, pii_redact, fix_unicode, normalize_punctuation,
remove_links — and that each shares its implementation with its Data-Juicer-named twin."""

from __future__ import annotations

import gzip
import json
import random

import ftfy
import pyarrow as pa
import pytest
from pydantic import ValidationError

from recipeflow.operators import registry
from recipeflow.operators.text.unicode_repair import fix_unicode, looks_like_mojibake
from recipeflow.operators.fix_unicode import FixUnicode
from recipeflow.operators.normalize_punctuation import NormalizePunctuation
from recipeflow.operators.pii_redact import PiiRedact
from recipeflow.operators.remove_links import RemoveLinks
from recipeflow.operators.url_filter import UrlFilter, parent_domains, url_host
from tests.conftest import CORPORA


def batch_of(texts: list[str], urls: list[str | None] | None = None) -> pa.Table:
    columns = {"id": [f"d{i}" for i in range(len(texts))], "text": texts}
    if urls is not None:
        columns["url"] = pa.array(urls, type=pa.string())
    return pa.table(columns)


# --- url_filter ----------------------------------------------------------------------------

URLS = [
    "https://example.com/page",  # a listed domain
    "https://www.shop.example.com/x",  # under a listed domain
    "http://notexample.com/",  # shares only a suffix of characters, not a domain
    "https://blocked.org/exact/page?id=1",  # a listed URL
    "https://news.site/free-casino-games",  # a banned word
    "https://news.site/poker/online/bonus",  # two soft banned words
    "https://news.site/superxxxvideos",  # a banned subword glued to others
    "https://debian.org/doc/",  # clean
    None,  # no URL
]


def url_filter_params(tmp_path) -> dict:
    domains = tmp_path / "domains.txt"
    domains.write_text("# UT1-style list\nEXAMPLE.com\n\n")
    words = tmp_path / "words.txt.gz"
    with gzip.open(words, "wt") as f:
        f.write("casino\n")
    return {
        "domain_files": [str(domains)],
        "urls": ["https://blocked.org/exact/page?id=1"],
        "banned_word_files": [str(words)],
        "soft_banned_words": ["poker", "bonus", "dating"],
        "banned_subwords": ["xxx"],
    }


def test_url_filter_reason_codes_follow_datatrove(tmp_path):
    op = UrlFilter(url_filter_params(tmp_path))
    result = op.process(batch_of(["t"] * len(URLS), URLS))
    assert result.kept.column("id").to_pylist() == ["d2", "d7"]
    rejected = result.rejected
    # DataTrove's codes: `domain` when the registered domain (example.com) is listed, whatever
    # the subdomain; `subdomain` only when the exact host is listed.
    assert rejected.column("reject_reason").to_pylist() == [
        "domain", "domain", "url", "hard_blacklisted", "soft_blacklisted",
        "blacklisted_subword", "no_url",
    ]
    details = rejected.column("reject_detail").to_pylist()
    assert details[1] == "matched=example.com" and details[4] == "matched=bonus,poker"
    # statistics are written into every document, null for the kept ones
    assert result.kept.column("stat_url_block_reason").to_pylist() == [None, None]


def test_url_filter_lists_are_empty_by_default_and_nothing_is_downloaded():
    op = UrlFilter()
    result = op.process(batch_of(["t"] * 3, ["https://example.com", "http://porn.example", None]))
    assert result.kept.column("id").to_pylist() == ["d0", "d1"]
    assert result.rejected.column("reject_reason").to_pylist() == ["no_url"]
    with pytest.raises(ValidationError, match="not shipped with recipeflow"):
        UrlFilter({"use_integrated_lists": True})


def test_url_filter_keeps_documents_without_url_when_asked_and_reads_another_field():
    op = UrlFilter({"url_field": "source_url", "missing_url": "keep", "domains": ["a.org"]})
    table = pa.table({"id": ["x", "y"], "text": ["t", "t"], "source_url": ["http://a.org/", None]})
    result = op.process(table)
    assert result.kept.column("id").to_pylist() == ["y"]


def test_url_hosts_and_parent_domains():
    assert url_host("HTTPS://User:pw@WWW.Example.COM:8080/path") == "www.example.com"
    assert url_host("example.com/page") == "example.com"
    assert url_host("http://[::1") is None
    assert parent_domains("a.b.example.com") == ["b.example.com", "example.com", "com"]


# --- pii_redact ----------------------------------------------------------------------------

# Outputs checked against DataTrove 0.10.1's PIIFormatter (one formatter per document).
PII_CASES = {
    "Write to john.doe@example.com or Jane_Smith+tag@mail.co.uk today.":
        "Write to email@example.com or firstname.lastname@example.org today.",
    "Servers 8.8.8.8, 192.168.1.10, 10.0.0.1, 1.1.1.1 and 127.0.0.1; odd 300.1.2.3 and "
    "01.2.3.4 and 203.0.113.9.":
        "Servers 22.214.171.124, 192.168.1.10, 10.0.0.1, 126.96.36.199 and 127.0.0.1; odd "
        "300.1.2.3 and 01.2.3.4 and 203.0.113.9.",
    "user@[192.168.0.1] and x@localhost and a@b.c":
        "email@example.com and x@localhost and firstname.lastname@example.org",
    "version 1.2.3.4567 and 12345.6.7.8": "version 22.214.171.12467 and 123126.96.36.199",
    "no pii here": "no pii here",
}


@pytest.mark.parametrize("text", list(PII_CASES))
def test_pii_redact_matches_fineweb(text):
    assert PiiRedact().map_text(text) == PII_CASES[text]


def test_pii_replacements_cycle_within_a_document_and_restart_with_the_next():
    op = PiiRedact({"remove_emails": False})
    text = " ".join(["9.9.9.9"] * 7)
    expected = "22.214.171.124 126.96.36.199 188.8.131.52 184.108.40.206 220.127.116.11 18.104.22.168 22.214.171.124"
    assert op.map_text(text) == expected
    assert op.map_text(text) == expected  # not carried over from the previous document


def test_pii_redact_switches_and_replacements():
    text = "a@b.org from 10.1.2.3 and 8.8.8.8"
    assert PiiRedact({"remove_ips": False}).map_text(text) == "email@example.com from 10.1.2.3 and 8.8.8.8"
    everything = PiiRedact({"only_remove_public_ips": False, "email_replacement": "<EMAIL>",
                            "ip_replacement": ["<IP>"]})
    assert everything.map_text(text) == "<EMAIL> from <IP> and <IP>"
    assert PiiRedact({"email_replacement": r"\1"}).map_text("x@y.org") == r"\1"  # literal text
    with pytest.raises(ValidationError, match="at least one replacement"):
        PiiRedact({"ip_replacement": []})


# --- fix_unicode, normalize_punctuation, remove_links ----------------------------------------


def test_fix_unicode_repairs_mojibake_and_normalizes():
    assert FixUnicode().map_text("The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows. schÃ¶n") == (
        "The Mona Lisa doesn't have eyebrows. schön"
    )
    assert FixUnicode({"normalization": "NFKC"}).map_text("ﬁle ｆｕｌｌ") == "file full"
    assert FixUnicode({"normalization": None}).map_text("e\u0301") == "e\u0301"
    with pytest.raises(ValidationError):
        FixUnicode({"normalization": "NFX"})


def _mojibake(text: str) -> str:
    """UTF-8 read as Latin-1: what ftfy is for."""
    return text.encode("utf-8").decode("latin-1")


EDGE_CASES = [
    "Ã  la carte\nÃ  nouveau",  # the anchored mojibake case, at a line start
    "fish &amp; chips\n<b>bold</b> &amp; more\nthen &amp; again",  # entities until a "<"
    "dos\r\nlines\rand\u2028separators\x85end",
    "ligature ﬁ, width ｗｉｄｅ, quotes “ ” ‘ ’, control \x07 \x1b[31mred\x1b[0m",
    "e\u0301 decomposed, \ufeffbom, \x9d C1",
    "",
    "\n\n",
]


def test_fix_unicode_is_exactly_ftfy():
    texts = _corpus_texts(400)[::4]  # every language: the corpus is grouped by language
    texts += [_mojibake(t) for t in texts[:20]] + EDGE_CASES
    rng = random.Random(1)  # lines of curly quotes, ligatures, full-width forms and the rest
    alphabet = list("ab \n“”‘’ﬁｆｕ＆＂\u3000&amp;<Ã©\x9d\r\x07e\u0301")
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for text in texts:
        assert fix_unicode(text) == ftfy.fix_text(text)
    for normalization in ("NFKC", None):
        for text in texts[::5] + EDGE_CASES:
            assert fix_unicode(text, normalization) == ftfy.fix_text(text, normalization=normalization)


def test_mojibake_search_is_exactly_ftfys():
    """The windowed search of ftfy's mojibake pattern finds a match exactly when ftfy's does:
    on real lines, on mojibake of them, and on random strings of the characters it is about."""
    texts = _corpus_texts(400)[::4]
    lines = [line for text in texts for line in text.split("\n")]
    mojibake = [_mojibake(t) for t in texts] + [t.encode("utf-8").decode("cp1252", "replace") for t in texts]
    rng = random.Random(0)
    alphabet = list("aZé Ã©Â€â„¢\xa0\x85ВГРСвЂ«»“”‘’–—°µ×²³ØÙàβ€āŒœ√±‚Ä\n.,x")
    noise = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(30000)]
    for text in lines + texts + mojibake + noise:
        assert looks_like_mojibake(text) == (ftfy.badness.BADNESS_RE.search(text) is not None), text


def test_normalize_punctuation():
    text = "你好，世界。「引号」—破折号…！（注）：１２％ ► «quote» ’s"
    assert NormalizePunctuation().map_text(text) == (
        '你好,世界."引号" - 破折号...!(注):"２% - "quote" \'s'
    )


def test_remove_links_leaves_closing_punctuation():
    text = "See https://www.debian.org/doc/ (official) or www.example.com, and ftp://ftp.debian.org/debian."
    assert RemoveLinks().map_text(text) == "See  (official) or , and ."
    assert RemoveLinks({"replacement": "<URL>"}).map_text("go to http://a.org/x.") == "go to <URL>."


def _corpus_texts(limit: int = 400) -> list[str]:
    with gzip.open(CORPORA / "debian-handbook.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for _, line in zip(range(limit), f)]


@pytest.mark.parametrize(
    ("native", "native_params", "twin", "twin_params"),
    [
        ("fix_unicode", {}, "fix_unicode_mapper", {}),
        ("normalize_punctuation", {}, "punctuation_normalization_mapper", {}),
        ("remove_links", {}, "clean_links_mapper", {}),
        ("remove_links", {"replacement": "<L>"}, "clean_links_mapper", {"repl": "<L>"}),
    ],
)
def test_native_operators_and_their_data_juicer_twins_agree(native, native_params, twin, twin_params):
    texts = _corpus_texts(400)[::3]
    ours = registry.get(native)(native_params)
    theirs = registry.get(twin)(twin_params)
    changed = 0
    for text in texts:
        out = ours.map_text(text)
        assert out == theirs.map_text(text)
        changed += out != text
    assert changed > 0  # the corpus exercises the operator

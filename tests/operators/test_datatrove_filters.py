"""DataTrove-compatible operators: language_id, Gopher, C4 and FineWeb quality filters.

Parameter names, defaults and reason codes are checked against DataTrove 0.10.1's classes;
documents are crafted to trip (and pass) each rule; word splitting is checked on sentences
whose spaCy tokens (what DataTrove counts) were recorded from spaCy 3.8; language_id runs the
real bundled lid.176 model on real text from the shared corpora.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from recipeflow.operators import document as doc
from recipeflow.operators.text.words import split_words, splitter
from recipeflow.operators.c4_quality_filter import C4QualityFilter
from recipeflow.operators.fineweb_quality_filter import FinewebQualityFilter
from recipeflow.operators.gopher_quality_filter import GopherQualityFilter
from recipeflow.operators.gopher_repetition_filter import GopherRepetitionFilter
from recipeflow.operators.language_id import LanguageId
from recipeflow.operators.registry import get
from tests.conftest import CORPORA


def batch_of(*texts: str) -> pa.Table:
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": list(texts)})


def reasons(op, *texts: str) -> list[str | None]:
    _, decisions = op.annotate(batch_of(*texts))
    return [d.reason if d else None for d in decisions]


def defaults(op_class) -> dict:
    return {name: field.get_default(call_default_factory=True)
            for name, field in op_class.Params.model_fields.items()}


# A clean English paragraph that passes every rule of every filter (checked below).
GOOD = (
    "The Debian project is an association of individuals who have made common cause to create "
    "a free operating system. This operating system is called Debian, and it is used by many "
    "people around the world. Packages are installed with tools such as apt, which resolve "
    "dependencies and keep the system up to date.\n"
    "Administrators like the stability of the releases and the care that goes into them. The "
    "security team publishes updates for the stable release as soon as they are ready.\n"
    "Many volunteers translate the documentation into their own languages, so that users can "
    "read it with ease. They also review each other's work before it is published."
)


# ---------------------------------------------------------------------------------------------
# Parameters and defaults: DataTrove's names and values
# ---------------------------------------------------------------------------------------------


def test_gopher_quality_parameters_are_datatrove_s():
    assert defaults(GopherQualityFilter) == {
        "min_doc_words": 50, "max_doc_words": 100000, "min_avg_word_length": 3,
        "max_avg_word_length": 10, "max_symbol_word_ratio": 0.1, "max_bullet_lines_ratio": 0.9,
        "max_ellipsis_lines_ratio": 0.3, "max_non_alpha_words_ratio": 0.8, "min_stop_words": 2,
        "stop_words": None, "language": "en",
    }


def test_gopher_repetition_parameters_are_datatrove_s():
    assert defaults(GopherRepetitionFilter) == {
        "dup_line_frac": 0.3, "dup_para_frac": 0.3, "dup_line_char_frac": 0.2,
        "dup_para_char_frac": 0.2, "top_n_grams": ((2, 0.2), (3, 0.18), (4, 0.16)),
        "dup_n_grams": ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
        "language": "en",
    }
    # YAML gives lists: they are accepted as pairs.
    op = GopherRepetitionFilter({"top_n_grams": [[2, 0.5]], "dup_n_grams": []})
    assert op.params.top_n_grams == ((2, 0.5),)


def test_c4_quality_parameters_are_datatrove_s():
    assert defaults(C4QualityFilter) == {
        "split_paragraph": True, "remove_citations": True, "filter_no_terminal_punct": True,
        "min_num_sentences": 5, "min_words_per_line": 3, "max_word_length": 1000,
        "filter_lorem_ipsum": True, "filter_javascript": True, "filter_curly_bracket": True,
        "filter_policy": True, "language": "en",
    }


def test_fineweb_quality_parameters_are_datatrove_s():
    assert defaults(FinewebQualityFilter) == {
        "line_punct_thr": 0.12, "line_punct_exclude_zero": False, "stop_chars": None,
        "short_line_thr": 0.67, "short_line_length": 30, "char_duplicates_ratio": 0.01,
        "new_line_ratio": 0.3, "language": "en",
    }


def test_language_id_parameters():
    assert defaults(LanguageId) == {
        "languages": None, "min_score": 0.65, "per_language_min_score": {}, "model": "lid.176",
        "label_only": False, "field": "lang", "score_field": "lang_score",
    }
    with pytest.raises(ValueError, match="empty list"):
        LanguageId({"languages": []})


def test_operators_are_registered_under_their_recipe_names():
    for name, cls in [("language_id", LanguageId), ("gopher_quality_filter", GopherQualityFilter),
                      ("gopher_repetition_filter", GopherRepetitionFilter),
                      ("c4_quality_filter", C4QualityFilter),
                      ("fineweb_quality_filter", FinewebQualityFilter)]:
        assert get(name) is cls


def test_the_good_document_passes_every_filter():
    for op in [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(),
               FinewebQualityFilter()]:
        assert reasons(op, GOOD) == [None], op.name


# ---------------------------------------------------------------------------------------------
# Gopher quality
# ---------------------------------------------------------------------------------------------


def test_gopher_quality_reasons():
    op = GopherQualityFilter()
    words = GOOD.split()
    cases = {
        "gopher_short_doc": "The cat and the dog sat on the mat with a hat.",
        "gopher_long_doc": " ".join(["the cat"] * 60_000),
        "gopher_below_avg_threshold": " ".join(["a to of be"] * 30) + " the and",
        "gopher_above_avg_threshold": " ".join(["internationalization"] * 60) + " the and",
        "gopher_too_many_hashes": GOOD + " #" * 20,
        "gopher_too_many_ellipsis": GOOD + " ..." * 20,
        "gopher_too_many_bullets": "\n".join("- " + " ".join(words[i:i + 10]) for i in range(0, 120, 10)),
        "gopher_too_many_end_ellipsis": "\n".join(" ".join(words[i:i + 10]) + "..." for i in range(0, 120, 10)),
        "gopher_below_alpha_threshold": GOOD + " 1234" * 80,
        "gopher_enough_stop_words": " ".join(["Debian packages install software quickly"] * 15),
    }
    got = reasons(op, *cases.values())
    assert got == list(cases), dict(zip(cases, got))


def test_gopher_quality_statistics_and_rejections_are_recorded():
    op = GopherQualityFilter()
    result = op.process(batch_of(GOOD, "too short"))
    assert result.kept.column("id").to_pylist() == ["0"]
    for name in ["gopher_word_count", "gopher_avg_word_length", "gopher_stop_words",
                 "gopher_alpha_words_ratio", "gopher_bullet_lines_ratio"]:
        assert doc.stat_column(name) in result.kept.column_names
    rejected = result.rejected.to_pylist()[0]
    assert rejected[doc.REJECT_REASON] == "gopher_short_doc"
    assert rejected[doc.REJECT_STATISTIC] == "gopher_word_count"
    assert rejected[doc.REJECT_VALUE] == 2.0
    assert rejected[doc.REJECTED_BY] == "gopher_quality_filter"


def test_gopher_quality_thresholds_can_be_turned_off_and_stop_words_replaced():
    short = "Debian packages and the maintainers of the project are great."
    assert reasons(GopherQualityFilter({"min_doc_words": None}), short) == [None]
    german = " ".join(["Der Hund und die Katze schlafen im Garten"] * 8)
    assert reasons(GopherQualityFilter(), german) == ["gopher_enough_stop_words"]
    op = GopherQualityFilter({"stop_words": ["der", "und", "die"], "language": "de"})
    assert reasons(op, german) == [None]


# ---------------------------------------------------------------------------------------------
# Gopher repetition
# ---------------------------------------------------------------------------------------------


def test_gopher_repetition_reasons():
    op = GopherRepetitionFilter()
    paragraphs = GOOD.split("\n")
    unique_words = " ".join(f"w{i}x" for i in range(300))
    cases = {
        "empty": "",
        "dup_para_frac": "\n\n".join([paragraphs[0], "Same paragraph.", "Same paragraph.",
                                      "Same paragraph.", paragraphs[1]]),
        "dup_para_char_frac": "\n\n".join([paragraphs[0], paragraphs[0], paragraphs[1],
                                           paragraphs[2], "One", "Two", "Three", "Four"]),
        "dup_line_frac": "\n".join(["A line here.", "A line here.", "Another one.",
                                    "A line here.", "Last one here and a long sentence " * 5]),
        "dup_line_char_frac": "\n".join([f"Unique line number {i} here." for i in range(10)]
                                         + [paragraphs[0], paragraphs[0]]),
        "top_2_gram": unique_words + " " + "debian rocks " * 60,
        "duplicated_5_n_grams": unique_words + " " + " ".join(
            [f"v{i}y" for i in range(150)] * 2),
    }
    got = reasons(op, *cases.values())
    assert got == list(cases), dict(zip(cases, got))


def test_gopher_repetition_statistics_are_fractions_of_characters():
    op = GopherRepetitionFilter()
    text = "\n\n".join(["abc"] * 4)
    stats = op.compute_stats(batch_of(text))
    assert stats["gopher_rep_dup_para_frac"] == [0.75]
    assert stats["gopher_rep_dup_para_char_frac"] == [9 / len(text)]
    assert stats["gopher_rep_top_2_gram_frac"] == [3 * len("abc abc") / len(text)]
    assert set(stats) >= {f"gopher_rep_dup_{n}_gram_frac" for n in range(5, 11)}


# ---------------------------------------------------------------------------------------------
# C4 quality: rewrites text and drops documents
# ---------------------------------------------------------------------------------------------


def test_c4_removes_bad_lines_and_keeps_the_rest():
    op = C4QualityFilter()
    text = "\n".join([
        "Menu",  # no terminal punctuation
        "Too short.",  # fewer than 3 words
        "Please enable JavaScript to view this page.",  # javascript
        "This site uses cookies to improve your experience.",  # policy
        "Wikipedia says so[1] and it is right.",  # citation removed
        GOOD,
    ])
    result = op.process(batch_of(text))
    kept = result.kept.column("text").to_pylist()[0]
    assert kept.splitlines()[0] == "Wikipedia says so and it is right."
    assert "Menu" not in kept and "cookies" not in kept and "JavaScript" not in kept
    row = result.kept.to_pylist()[0]
    assert row["stat_c4_lines"] == 8 and row["stat_c4_lines_kept"] == 4
    assert row["stat_c4_sentences"] == 8


def test_c4_reasons_and_original_text_of_rejected_documents():
    op = C4QualityFilter()
    lorem = GOOD + "\nLorem ipsum dolor sit amet, consectetur."
    curly = GOOD + "\nfunction f() { return 1; } is code."
    few = "One sentence here is fine. Two sentences here."
    assert reasons(op, lorem, curly, few) == ["lorem_ipsum", "curly_bracket", "too_few_sentences"]
    result = op.process(batch_of(lorem))
    rejected = result.rejected.to_pylist()[0]
    assert rejected["text"] == lorem  # rejected documents keep their text
    assert rejected[doc.REJECT_STATISTIC] == "c4_lorem_ipsum_line"
    assert rejected[doc.REJECT_VALUE] == 3.0


def test_c4_without_terminal_punctuation_rule_keeps_headings():
    text = "A heading without a period\n" + GOOD
    kept = C4QualityFilter({"filter_no_terminal_punct": False}).process(batch_of(text)).kept
    assert kept.column("text").to_pylist()[0].startswith("A heading without a period\n")
    kept = C4QualityFilter().process(batch_of(text)).kept
    assert not kept.column("text").to_pylist()[0].startswith("A heading")


# ---------------------------------------------------------------------------------------------
# FineWeb quality
# ---------------------------------------------------------------------------------------------


def test_fineweb_quality_reasons():
    op = FinewebQualityFilter()
    long_lines = [f"This is line number {i} of a page and it goes on for a while" for i in range(10)]
    cases = {
        "empty": "\n \n",
        "line_punct_ratio": "\n".join(long_lines),
        "short_line_ratio": "\n".join(["Short line.", "Another.", "Yes.", GOOD.split("\n")[0]]),
        "char_dup_ratio": GOOD + "\n" + GOOD.split("\n")[1],
        "list_ratio": "\n".join(f"configuration_management_{i}_internationalization."
                                 for i in range(30)),
    }
    assert reasons(op, *cases.values()) == list(cases)
    assert reasons(FinewebQualityFilter({"line_punct_exclude_zero": True}),
                   cases["line_punct_ratio"]) == [None]
    stats = op.compute_stats(batch_of(GOOD))
    assert stats["fineweb_line_punct_ratio"] == [1.0]


# ---------------------------------------------------------------------------------------------
# Word splitting: spaCy's tokens, per language
# ---------------------------------------------------------------------------------------------

# Tokens DataTrove 0.10.1 (spaCy 3.8) gives for these sentences.
SPACY_TOKENS = {
    "en": ("Don't panic: apt-get install foo-bar (e.g. v2.1) costs $5... See "
           "https://debian.org/doc, it's 10km away!",
           ["Do", "n't", "panic", ":", "apt", "-", "get", "install", "foo", "-", "bar", "(", "e.g.",
            "v2.1", ")", "costs", "$", "5", "...", "See", "https://debian.org/doc", ",", "it", "'s",
            "10", "km", "away", "!"]),
    "de": ("Das Debian-Paket z.B. wird usw. installiert, siehe /etc/apt/sources.list (ca. 3 GB).",
           ["Das", "Debian-Paket", "z.B.", "wird", "usw.", "installiert", ",", "siehe", "/etc", "/",
            "apt", "/", "sources.list", "(", "ca.", "3", "GB", ")", "."]),
    "fr": ("L'administrateur n'a pas installé l'outil aujourd'hui : voir apt-get.",
           ["L'", "administrateur", "n'", "a", "pas", "installé", "l'", "outil", "aujourd'hui",
            ":", "voir", "apt", "-", "get", "."]),
    "zh": ("我们使用apt-get命令安装软件包。请参阅手册！",
           ["我们使用apt", "-", "get命令安装软件包。请参阅手册", "！"]),
    "nl": ("Het pakket is o.a. beschikbaar, bijv. via apt-get's repository.",
           ["Het", "pakket", "is", "o.a.", "beschikbaar", ",", "bijv.", "via", "apt-get's",
            "repository", "."]),
}


@pytest.mark.parametrize("language", sorted(SPACY_TOKENS))
def test_word_splitting_matches_spacy(language):
    text, tokens = SPACY_TOKENS[language]
    assert split_words(text, language) == tokens


def test_japanese_is_cut_at_script_changes():
    text = "Debianパッケージをインストールするには、apt-getコマンドを使います。"
    assert split_words(text, "ja") == [
        "Debian", "パッケージ", "を", "インストール", "するには", "、", "apt", "-", "get", "コマンド",
        "を", "使", "います", "。"]
    # Under English rules the same text is a few long chunks, as spaCy's English makes it.
    assert len(split_words(text, "en")) == 4


def test_language_codes_are_normalized():
    assert split_words("z.B. hier", "deu") == split_words("z.B. hier", "de") == ["z.B.", "hier"]
    # English has no "z.B.": its pieces are what spaCy's English makes of it.
    assert split_words("z.B. hier", "en") == ["z.", "B.", "hier"]


def test_sentences_are_split_like_spacy_s_sentencizer():
    text = "Hello world. This is it! And e.g. this one... ok? Yes."
    assert splitter("en").split_sentences(text) == [
        "Hello world.", " This is it!", " And e.g. this one... ok?", " Yes."]
    assert splitter("en").count_sentences("No end mark here") == 1


def test_language_aware_filters_use_their_language():
    text = " ".join(["Das Debian-Paket z.B. wird installiert"] * 10)
    en = GopherQualityFilter({"language": "en", "min_stop_words": None}).compute_stats(batch_of(text))
    de = GopherQualityFilter({"language": "de", "min_stop_words": None}).compute_stats(batch_of(text))
    # English splits the hyphen off (not counted: punctuation) and "z.B." in two.
    assert en["gopher_word_count"] == [70] and de["gopher_word_count"] == [50]


# ---------------------------------------------------------------------------------------------
# language_id on real text (bundled lid.176)
# ---------------------------------------------------------------------------------------------


def _mostly_english(paragraph: str, lang: str) -> bool:
    """Translations keep some paragraphs (and commands) in English: not what a test wants."""
    if lang in ("ja", "zh"):
        return sum(c.isascii() for c in paragraph) > 0.5 * len(paragraph)
    return " the " in paragraph


@pytest.fixture(scope="module")
def reference_paragraphs() -> dict[str, list[str]]:
    """A few long paragraphs per language from the Debian Reference."""
    out: dict[str, list[str]] = {}
    with gzip.open(CORPORA / "debian-reference.jsonl.gz", "rt") as f:
        for line in f:
            record = json.loads(line)
            paragraphs = [p for p in record["text"].split("\n") if len(p) > 200
                          and (record["lang"] == "en" or not _mostly_english(p, record["lang"]))]
            out.setdefault(record["lang"], []).extend(paragraphs[:3])
    return out


def test_language_id_annotates_every_document(reference_paragraphs):
    texts = [reference_paragraphs[lang][0] for lang in ["en", "de", "fr", "ja"]]
    result = LanguageId().process(batch_of(*texts))
    assert result.rejected is None  # annotate only
    assert result.kept.column("lang").to_pylist() == ["en", "de", "fr", "ja"]
    assert all(s > 0.65 for s in result.kept.column("lang_score").to_pylist())
    assert "stat_language_score" in result.kept.column_names


def test_language_id_keeps_only_wanted_languages(reference_paragraphs):
    texts = [reference_paragraphs[lang][1] for lang in ["en", "de", "fr", "es"]]
    result = LanguageId({"languages": ["en", "fr"]}).process(batch_of(*texts))
    assert result.kept.column("lang").to_pylist() == ["en", "fr"]
    rejected = result.rejected.to_pylist()
    assert [r["lang"] for r in rejected] == ["de", "es"]
    assert {r[doc.REJECT_REASON] for r in rejected} == {"language_not_kept"}
    assert all(r[doc.REJECT_VALUE] < 0.1 for r in rejected)  # the real score of en/fr
    assert rejected[0][doc.REJECT_DETAIL].startswith("top=de:")


def test_language_id_per_language_thresholds(reference_paragraphs):
    texts = [reference_paragraphs["en"][2], reference_paragraphs["de"][2]]
    scores = LanguageId().process(batch_of(*texts)).kept.column("lang_score").to_pylist()
    # A threshold just above a document's score drops it; just below keeps it (strictly above).
    op = LanguageId({"languages": ["en", "de"], "per_language_min_score": {"de": scores[1]},
                     "min_score": scores[0] - 1e-6})
    assert reasons(op, *texts) == [None, "language_not_kept"]
    low = LanguageId({"languages": ["en", "de"], "min_score": 0.2})
    assert reasons(low, *texts) == [None, None]
    assert reasons(LanguageId({"languages": ["de"], "label_only": True}), *texts) == [None, None]


# ---------------------------------------------------------------------------------------------
# Inside a recipe
# ---------------------------------------------------------------------------------------------


def test_fineweb_chain_runs_in_a_recipe(tmp_path, prefect_api, reference_paragraphs):
    from recipeflow.orchestration.runner import run_recipe

    english = "\n".join(reference_paragraphs["en"][:6])
    records = [
        {"id": "good", "text": GOOD},
        {"id": "english-reference", "text": english},
        {"id": "german", "text": "\n".join(reference_paragraphs["de"][:3])},
        {"id": "short", "text": "Too short to keep, but English all the same."},
    ]
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    recipe = {
        "name": "fineweb-chain",
        "inputs": {"docs": {"path": str(data), "format": "jsonl"}},
        "process": [
            {"language_id": {"languages": ["en"], "min_score": 0.65}},
            {"gopher_repetition_filter": {}},
            {"gopher_quality_filter": {}},
            {"c4_quality_filter": {"filter_no_terminal_punct": False}},
            {"fineweb_quality_filter": {}},
        ],
        "output": {"path": str(tmp_path / "out"), "keep_rejected": True},
        "run": {"executor": "threads", "workers": 1, "shard_size": 100},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    [manifest] = run_recipe(str(path), progress=False)
    folder = Path(tmp_path / "out" / "versions" / manifest["version"])
    kept = pq.read_table(folder / "data").to_pylist()
    assert "good" in {r["id"] for r in kept}
    assert all(r["lang"] == "en" and r["stat_gopher_word_count"] >= 50 for r in kept)
    rejected = {r["id"]: r for r in pq.read_table(folder / "rejected").to_pylist()}
    assert rejected["german"]["rejected_by"] == "language_id"
    # Short texts fail the repetition rules first: one 2-gram is a large share of them.
    assert rejected["short"]["reject_reason"] == "top_2_gram"
    counts = {op["operator"]: (op["docs_in"], op["docs_out"]) for op in manifest["operators"]}
    assert counts["language_id"] == (4, 3)


def test_repeated_ngrams_from_hashes_equal_the_string_scan():
    """The hashed scan gives the character counts of the string scan, n-gram sizes 5 to 10, on
    real pages with planted repeats (n-grams are compared as concatenations, as DataTrove does:
    "ab c" and "a bc" are the same 2-gram)."""
    from recipeflow.operators.text.text_stats import repeated_ngram_chars, repeated_ngram_chars_by_size

    assert repeated_ngram_chars_by_size(["ab", "c", "x", "a", "bc"], [2]) == [
        repeated_ngram_chars(["ab", "c", "x", "a", "bc"], 2)
    ] == [3]
    with gzip.open(CORPORA / "debian-handbook.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(300), f)]
    texts += [t + "\n" + t[: len(t) // 3] for t in texts[:100]]  # repeated passages
    words_of = splitter("en").split
    sizes = [5, 6, 7, 8, 9, 10]
    with_repeats = 0
    for text in texts:
        words = words_of(text)
        expected = [repeated_ngram_chars(words, n) for n in sizes]
        assert repeated_ngram_chars_by_size(words, sizes) == expected
        with_repeats += any(expected)
    assert with_repeats >= 100

"""Accuracy of `language_id` (fastText lid.176, bundled) per language on paragraphs of at least
200 characters of the Debian Reference (en de es fr it ja pt zh).

The label is the translation a paragraph belongs to, a noisy label: translations keep some
paragraphs in English (commands, untranslated sections). So the script reports accuracy twice:
against every paragraph, and against the paragraphs that do not also occur, word for word, in
the English edition (the untranslated ones).

    python bench/language_id_accuracy.py [--corpus tests/data/debian-reference.jsonl.gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa

from recipeflow.operators.language_id import LanguageId

LANGUAGES = ("en", "de", "es", "fr", "it", "ja", "pt", "zh")
DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "debian-reference.jsonl.gz"


def paragraphs(corpus: Path, min_chars: int = 200) -> list[tuple[str, str]]:
    """(label, paragraph) for every line of at least ``min_chars`` characters."""
    out = []
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        for line in f:
            chapter = json.loads(line)
            out += [(chapter["lang"], p.strip()) for p in chapter["text"].split("\n") if len(p.strip()) >= min_chars]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()

    items = [(label, text) for label, text in paragraphs(args.corpus) if label in LANGUAGES]
    english = {text for label, text in items if label == "en"}
    batch = pa.table({"id": [str(i) for i in range(len(items))], "text": [t for _, t in items]})
    start = time.perf_counter()
    annotated, _ = LanguageId({}).annotate(batch)
    seconds = time.perf_counter() - start
    predicted = annotated.column("lang").to_pylist()

    totals: dict[str, Counter] = defaultdict(Counter)
    confusions: dict[str, Counter] = defaultdict(Counter)
    for (label, text), guess in zip(items, predicted):
        translated = label == "en" or text not in english
        totals[label]["all"] += 1
        totals[label]["all_ok"] += guess == label
        if translated:
            totals[label]["translated"] += 1
            totals[label]["translated_ok"] += guess == label
            if guess != label:
                confusions[label][guess] += 1

    print(f"language_id (lid.176) on {len(items)} paragraphs >= 200 chars, {len(items) / seconds:,.0f} paragraphs/s\n")
    print(f"{'lang':<5} {'paragraphs':>10} {'accuracy':>9} {'translated':>11} {'accuracy':>9}  most frequent confusions")
    for lang in LANGUAGES:
        t = totals[lang]
        acc_all = t["all_ok"] / t["all"] if t["all"] else float("nan")
        acc_tr = t["translated_ok"] / t["translated"] if t["translated"] else float("nan")
        wrong = ", ".join(f"{k}:{v}" for k, v in confusions[lang].most_common(3))
        print(f"{lang:<5} {t['all']:>10} {acc_all:>9.3f} {t['translated']:>11} {acc_tr:>9.3f}  {wrong}")


if __name__ == "__main__":
    main()

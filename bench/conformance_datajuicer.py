"""Conformance: recipeflow's Data-Juicer operators against py-data-juicer 1.6.1 itself.

The same documents (at least 20,000, cut from every language of the shared corpora by
bench/common.py, plus real HTML pages and deterministic variants that give each cleaner work:
mojibake, copyright headers, e-mail and IP addresses, links, odd whitespace, near-duplicates)
go through every operator recipeflow registers under a Data-Juicer name, one operator at a
time, and through Data-Juicer's operator of that name in its own virtual environment:

* filters: the keep/drop decision of each document (Data-Juicer side:
  ``bench/datajuicer_reference.py``);
* mappers: the output text of each document;
* document_deduplicator: the keep/drop decision of each document.

Parameters are written as a Data-Juicer recipe writes them and reach recipeflow's operator
through the Data-Juicer recipe converter, as ``recipeflow run dj_recipe.yaml`` would pass them.

    python bench/conformance_datajuicer.py [--docs 20000] [--venv /work/ref/dj] [--ops a,b]
                                            [--examples 3] [--work DIR] [--json results.json]

perplexity_filter needs a KenLM model and the sentencepiece model it was trained on; none is
downloaded: the script trains a small sentencepiece model on English pages and writes a
unigram KenLM (ARPA) model of its pieces, and gives both files to both sides. It needs the
``sentencepiece`` package in recipeflow's environment (skipped with a note otherwise).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa  # noqa: E402

from bench.common import CORPORA, build_documents, reference_python, write_jsonl  # noqa: E402
from recipeflow.recipe.datajuicer import convert_datajuicer_recipe, supported_operators  # noqa: E402
from recipeflow.operators.base import BarrierOperator, Filter, Mapper, Operator  # noqa: E402
from recipeflow.operators.models.fasttext_models import bundled_lid_path  # noqa: E402

REFERENCE_CLI = Path(__file__).resolve().parent / "datajuicer_reference.py"
TARGET = 0.995
BATCH = 2000  # documents per batch on our side (Data-Juicer uses its own batch size)
SHARD = 5000  # documents per shard for the deduplicator's barrier

# Parameters per operator, as a Data-Juicer recipe writes them; several settings where the
# defaults would decide (almost) nothing. An operator not listed runs with its defaults.
SETTINGS: dict[str, list[dict[str, Any]]] = {
    "alphanumeric_filter": [{"min_ratio": 0.7}, {"tokenization": False, "min_ratio": 0.25, "max_ratio": 0.8}],
    "average_line_length_filter": [{"min_len": 40, "max_len": 400}],
    "character_repetition_filter": [{"rep_len": 10, "min_ratio": 0.0, "max_ratio": 0.1}],
    "flagged_words_filter": [{"lang": "en", "max_ratio": 0.0005}],
    "language_id_score_filter": [{"lang": "en", "min_score": 0.8}, {"lang": ["de", "fr", "zh"], "min_score": 0.5}],
    "maximum_line_length_filter": [{"min_len": 20, "max_len": 600}],
    "perplexity_filter": [{"lang": "en", "max_ppl": 1500}],
    "special_characters_filter": [{"min_ratio": 0.0, "max_ratio": 0.25}],
    "specified_field_filter": [{"field_key": "lang", "target_value": ["en", "de", "zh"]}],
    "stopwords_filter": [{"lang": "en", "min_ratio": 0.3}],
    "suffix_filter": [{"suffixes": [".html", ".md"]}],
    "text_length_filter": [{"min_len": 300, "max_len": 5000}],
    "word_repetition_filter": [{"lang": "en", "rep_len": 10, "min_ratio": 0.0, "max_ratio": 0.2}],
    "words_num_filter": [{"lang": "en", "min_num": 50, "max_num": 1000}],
    "clean_email_mapper": [{}, {"repl": "<EMAIL>"}],
    "clean_ip_mapper": [{}, {"repl": "<IP>"}],
    "clean_links_mapper": [{}, {"repl": "<LINK>"}],
    "fix_unicode_mapper": [{}, {"normalization": "NFKC"}],
    "remove_long_words_mapper": [{}, {"min_len": 2, "max_len": 20}],
    "document_deduplicator": [{}, {"lowercase": True, "ignore_non_character": True}],
}

# Runs Data-Juicer mappers and deduplicators through their own `run` (as dj-process does), in
# Data-Juicer's environment, over one dataset loaded once; writes each document's output text
# or keep/drop decision per job, and each job's seconds (loading excluded) on stderr.
DATAJUICER_RUNNER = textwrap.dedent(
    '''
    import json, os, sys, time
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    from data_juicer.core.data import NestedDataset
    from data_juicer.ops.base_op import OPERATORS, Deduplicator

    source, jobs = sys.argv[1], json.load(open(sys.argv[2]))
    datasets.disable_progress_bars()
    records = [json.loads(line) for line in open(source, encoding="utf-8")]
    dataset = NestedDataset(datasets.Dataset.from_list(records))
    seconds = {}
    for job in jobs:
        params = dict(job["params"], num_proc=1)
        op = OPERATORS.modules[job["name"]](**params)
        started = time.perf_counter()
        result = op.run(dataset)
        seconds[job["out"]] = round(time.perf_counter() - started, 3)
        with open(job["out"], "w", encoding="utf-8") as f:
            if isinstance(op, Deduplicator):
                kept = set(result["id"])
                for record in records:
                    f.write(json.dumps({"id": record["id"], "keep": record["id"] in kept}) + "\\n")
            else:
                for record_id, text in zip(result["id"], result["text"]):
                    f.write(json.dumps({"id": record_id, "text": text}, ensure_ascii=False) + "\\n")
    print(json.dumps(seconds), file=sys.stderr)
    '''
)


# ---------------------------------------------------------------------------------------------
# Documents


def _rng(key: str) -> random.Random:
    return random.Random(hashlib.sha256(key.encode()).hexdigest())


_CP1252_CONTROLS = {
    chr(b): bytes([b]).decode("cp1252") for b in range(0x80, 0xA0) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}


def mojibake(text: str) -> str:
    """UTF-8 read as Windows-1252 (bytes it leaves undefined read as Latin-1): real mojibake."""
    return text.encode("utf-8").decode("latin-1").translate(str.maketrans(_CP1252_CONTROLS))


def with_contact_details(text: str, rng: random.Random) -> str:
    """A contact line of e-mail and IP addresses and links, public and private, in the text."""
    user = rng.choice(["admin", "john.doe", "Jane_Smith+debian", "root", "info"])
    host = rng.choice(["example.org", "debian.org", "Mail.Example.COM", "lists.debian.org", "x.co.uk"])
    ip = rng.choice([
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "10.0.0.1", "127.0.0.1",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "fe80::1", "300.2.3.4",
    ])
    link = rng.choice([
        f"https://{host}/doc/{rng.randint(1, 999)}.html", f"www.{host}", f"ftp://ftp.{host}/pub/",
        f"http://{host}/wiki/Debian_(operating_system)", f"{host}/path?q=1&r=2",
    ])
    line = f"Contact {user}@{host} ({ip}) or see {link}."
    lines = text.split("\n")
    lines.insert(rng.randint(0, len(lines)), line)
    return "\n".join(lines)


def with_copyright_header(text: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "/*\n * Copyright (C) 2013 Raphaël Hertzog\n * GPL-2+\n */\n" + text
    return "# Copyright 2013 Roland Mas\n# License: GPL-2+\n\n" + text


def with_odd_whitespace(text: str, rng: random.Random) -> str:
    odd = ["\u00a0", "\u3000", "\t", "\u2009", "\u200b", "  "]
    chars = [rng.choice(odd) if c == " " and rng.random() < 0.05 else c for c in text]
    return " \u3000" + "".join(chars) + "\u200b "


def near_copy(text: str, rng: random.Random) -> str:
    """The same text with other case, punctuation or digits: a duplicate for the lenient
    comparison of document_deduplicator only."""
    roll = rng.random()
    if roll < 0.4:
        return text.upper()
    if roll < 0.7:
        return text.replace(",", "").replace(".", "!") + " 2024"
    return "  " + text.replace(" ", "  ") + "\n"


def html_pages(limit: int) -> list[dict]:
    """Real HTML pages (the handbook as served) for clean_html_mapper and the others."""
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    with open(CORPORA / "debian-handbook-pages.warc.gz", "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type != "response":
                continue
            url = record.rec_headers.get_header("WARC-Target-URI")
            html = record.content_stream().read().decode("utf-8", errors="replace")
            pages.append({"id": f"html-{len(pages)}", "text": html, "lang": url.split("/")[3][:2],
                          "source": "debian-handbook-pages", "url": url})
            if len(pages) >= limit:
                break
    return pages


def build_corpus(min_docs: int, html_limit: int) -> list[dict]:
    """Web-like documents, variants and copies, each with the fields the filters read."""
    docs = build_documents(min_docs) + html_pages(html_limit)
    variants = {0: mojibake, 1: with_copyright_header, 2: with_odd_whitespace}
    for doc in docs:
        rng = _rng(doc["id"])
        roll = rng.random()
        if roll < 0.05:
            doc["text"] = variants[0](doc["text"])
        elif roll < 0.08:
            doc["text"] = variants[1](doc["text"], rng)
        elif roll < 0.12:
            doc["text"] = variants[2](doc["text"], rng)
        if rng.random() < 0.10:
            doc["text"] = with_contact_details(doc["text"], rng)
    copies = []
    for index, doc in enumerate(docs):
        rng = _rng("copy:" + doc["id"])
        roll = rng.random()
        if roll < 0.03:
            copies.append({**doc, "id": f"{doc['id']}-copy"})
        elif roll < 0.05:
            copies.append({**doc, "id": f"{doc['id']}-near", "text": near_copy(doc["text"], rng)})
    docs += copies
    suffixes = [".html", ".md", ".txt", ".jsonl.gz"]
    for doc in docs:
        doc["input_file"] = f"pages/{doc['id']}{suffixes[int(hashlib.md5(doc['id'].encode()).hexdigest(), 16) % 4]}"
    return docs


# ---------------------------------------------------------------------------------------------
# Models for perplexity_filter, made here (nothing is downloaded)


def make_language_models(docs: list[dict], folder: Path) -> tuple[str, str] | None:
    """(KenLM ARPA, sentencepiece model) trained on English pages; None without sentencepiece."""
    try:
        import sentencepiece as spm
    except ImportError:
        return None
    english = [d["text"] for d in docs if d["lang"] == "en"][:3000]
    sp_path = folder / "en.sp.model"
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(line for text in english for line in text.split("\n") if line.strip()),
        model_writer=model, vocab_size=4000, model_type="unigram", num_threads=1,
        input_sentence_size=200000, shuffle_input_sentence=False, minloglevel=2,
    )
    sp_path.write_bytes(model.getvalue())
    tokenizer = spm.SentencePieceProcessor(model_file=str(sp_path))
    sentences = [
        ["<s>"] + line.split() + ["</s>"]
        for text in english
        for line in " ".join(tokenizer.encode_as_pieces(text)).splitlines()
    ]
    arpa_path = folder / "en.arpa"
    write_bigram_arpa(sentences, arpa_path)
    return str(arpa_path), str(sp_path)


def write_bigram_arpa(sentences: list[list[str]], path: Path, discount: float = 0.5) -> None:
    """A bigram ARPA model (KenLM needs at least bigrams): add-one unigrams, absolutely
    discounted bigrams (those seen twice or more), and the back-off weights that go with them."""
    unigrams: Counter[str] = Counter(w for s in sentences for w in s)
    bigrams: Counter[tuple[str, str]] = Counter(pair for s in sentences for pair in zip(s, s[1:]))
    contexts: Counter[str] = Counter()
    for (left, _), n in bigrams.items():
        contexts[left] += n
    kept = {pair: n for pair, n in bigrams.items() if n >= 2}
    vocabulary = sorted(set(unigrams) | {"<unk>"})
    total = sum(unigrams.values()) + len(vocabulary)
    p_unigram = {w: (unigrams.get(w, 0) + 1) / total for w in vocabulary}
    seen_after: dict[str, list[tuple[str, int]]] = {}
    for (left, right), n in kept.items():
        seen_after.setdefault(left, []).append((right, n))

    def log_backoff(word: str) -> float:
        seen = seen_after.get(word)
        if not seen:
            return 0.0
        left_over = 1 - sum((n - discount) / contexts[word] for _, n in seen)
        return math.log10(left_over / (1 - sum(p_unigram[right] for right, _ in seen)))

    lines = ["", "\\data\\", f"ngram 1={len(vocabulary)}", f"ngram 2={len(kept)}", "", "\\1-grams:"]
    for word in vocabulary:
        log_p = -99.0 if word == "<s>" else math.log10(p_unigram[word])
        lines.append(f"{log_p:.6f}\t{word}\t{log_backoff(word):.6f}")
    lines += ["", "\\2-grams:"]
    for (left, right), n in sorted(kept.items()):
        lines.append(f"{math.log10((n - discount) / contexts[left]):.6f}\t{left} {right}")
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Running both sides


@dataclass
class Outcome:
    values: dict[str, Any]  # id -> keep (bool) or output text
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)  # id -> statistics, for examples


def our_operator(name: str, params: dict[str, Any], models: dict[str, str]) -> Operator:
    """The operator as a Data-Juicer recipe with this step would build it."""
    params = dict(params)
    if name == "perplexity_filter":
        params.update(model_path=models["kenlm"], sp_model_path=models["sp"])
    recipe = convert_datajuicer_recipe({"dataset_path": "docs.jsonl", "process": [{name: params}]})
    return recipe.nodes["main"].process[0].build()


def _batches(docs: list[dict], size: int) -> list[pa.Table]:
    columns = ["id", "text", "lang", "source", "url", "input_file"]
    return [
        pa.table({c: [d.get(c) for d in docs[i:i + size]] for c in columns})
        for i in range(0, len(docs), size)
    ]


def run_ours(op: Operator, docs: list[dict]) -> Outcome:
    started = time.perf_counter()
    values: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if isinstance(op, BarrierOperator):
        batches = _batches(docs, SHARD)
        decisions = op.resolve([op.signatures(b) for b in batches])
        for batch, decision in zip(batches, decisions):
            ids = batch.column("id").to_pylist()
            values.update({doc_id: row not in decision.drop for row, doc_id in enumerate(ids)})
    elif isinstance(op, Filter):
        for batch in _batches(docs, BATCH):
            annotated, decisions = op.annotate(batch)
            ids = batch.column("id").to_pylist()
            stats = {c: annotated.column(c).to_pylist() for c in annotated.column_names if c.startswith("stat_")}
            for row, (doc_id, decision) in enumerate(zip(ids, decisions)):
                values[doc_id] = decision is None
                details[doc_id] = {k[5:]: v[row] for k, v in stats.items()}
    elif isinstance(op, Mapper):
        for batch in _batches(docs, BATCH):
            out = op.process(batch).kept
            values.update(zip(out.column("id").to_pylist(), out.column("text").to_pylist()))
    return Outcome(values, time.perf_counter() - started, details)


def _read_outcome(path: Path, seconds: float) -> Outcome:
    values, details = {}, {}
    for line in open(path, encoding="utf-8"):
        record = json.loads(line)
        values[record["id"]] = record["keep"] if "keep" in record else record["text"]
        if "stats" in record:
            details[record["id"]] = record["stats"]
    return Outcome(values, seconds, details)


def run_filter_reference(python: Path, name: str, params: dict, work: Path, models: dict[str, str]) -> Outcome:
    """Data-Juicer's decisions for one filter, from bench/datajuicer_reference.py."""
    out = work / f"dj-{name}.jsonl"
    command = [str(python), str(REFERENCE_CLI), "--input", str(work / "docs.jsonl"), "--op", name,
               "--params", json.dumps(params), "--out", str(out), "--lid-model", models["lid"]]
    if "kenlm" in models:
        command += ["--kenlm-model", models["kenlm"], "--sp-model", models["sp"]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"Data-Juicer's {name} failed:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    return _read_outcome(out, summary["seconds"])


def run_text_references(python: Path, jobs: list[tuple[str, dict]], work: Path) -> list[Outcome]:
    """Data-Juicer's output for every (mapper or deduplicator, parameters), in one process."""
    if not jobs:
        return []
    outs = [work / f"dj-{index}-{name}.jsonl" for index, (name, _) in enumerate(jobs)]
    (work / "jobs.json").write_text(json.dumps(
        [{"name": name, "params": params, "out": str(out)} for (name, params), out in zip(jobs, outs)]
    ))
    runner = work / "datajuicer_runner.py"
    runner.write_text(DATAJUICER_RUNNER)
    done = subprocess.run([str(python), str(runner), str(work / "docs.jsonl"), str(work / "jobs.json")],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"Data-Juicer's mappers failed:\n{done.stderr[-3000:]}")
    seconds = json.loads(done.stderr.strip().splitlines()[-1])
    return [_read_outcome(out, seconds[str(out)]) for out in outs]


# ---------------------------------------------------------------------------------------------
# Comparing


def first_difference(ours: str, theirs: str) -> str:
    index = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    start = max(0, index - 30)
    return f"at {index}: ours {ours[start:index + 40]!r} / DJ {theirs[start:index + 40]!r}"


def compare(ours: Outcome, theirs: Outcome, docs: list[dict], examples: int) -> tuple[int, int, list[str]]:
    agree, shown = 0, []
    for doc in docs:
        a, b = ours.values.get(doc["id"]), theirs.values.get(doc["id"])
        if a == b:
            agree += 1
            continue
        if len(shown) < examples:
            if isinstance(a, str) or isinstance(b, str):
                shown.append(f"{doc['id']} ({doc['lang']}): {first_difference(a or '', b or '')}")
            else:
                shown.append(f"{doc['id']} ({doc['lang']}): ours keep={a} {ours.details.get(doc['id'])} "
                             f"/ DJ keep={b} {theirs.details.get(doc['id'])}")
    return agree, len(docs), shown


def _job_key(job: tuple[str, dict]) -> str:
    return job[0] + json.dumps(job[1], sort_keys=True)


def kind_of(op: Operator) -> str:
    if isinstance(op, BarrierOperator):
        return "deduplicator"
    return "filter" if isinstance(op, Filter) else "mapper"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20000, help="at least this many documents")
    parser.add_argument("--html", type=int, default=1000, help="real HTML pages added")
    parser.add_argument("--venv", default=None, help="py-data-juicer environment (default /work/ref/dj)")
    parser.add_argument("--ops", default=None, help="comma-separated operators (default: all)")
    parser.add_argument("--examples", type=int, default=3)
    parser.add_argument("--work", default=None, help="folder for the documents and decisions")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="conformance-dj-"))
    work.mkdir(parents=True, exist_ok=True)
    python = reference_python("data-juicer", args.venv)
    docs = build_corpus(args.docs, args.html)
    write_jsonl(docs, work / "docs.jsonl")
    langs = Counter(d["lang"] for d in docs)
    print(f"{len(docs)} documents ({len(langs)} languages, {sum(len(d['text']) for d in docs) / 1e6:.0f} MB "
          f"of text) in {work}; Data-Juicer: {python}")

    models = {"lid": bundled_lid_path()}
    trained = make_language_models(docs, work)
    if trained:
        models.update(kenlm=trained[0], sp=trained[1])
    names = args.ops.split(",") if args.ops else supported_operators()
    checks = [(name, params) for name in names for params in SETTINGS.get(name, [{}])]
    if not trained:
        print("perplexity_filter: skipped (pip install sentencepiece to compare it)")
        checks = [(n, p) for n, p in checks if n != "perplexity_filter"]
    operators = [our_operator(name, params, models) for name, params in checks]
    text_jobs = [check for check, op in zip(checks, operators) if kind_of(op) != "filter"]
    print(f"Data-Juicer: {len(text_jobs)} mapper/deduplicator runs in one process...", flush=True)
    text_outcomes = dict(zip(map(_job_key, text_jobs), run_text_references(python, text_jobs, work)))
    results = []
    for (name, params), op in zip(checks, operators):
        kind = kind_of(op)
        ours = run_ours(op, docs)
        if kind == "filter":
            theirs = run_filter_reference(python, name, params, work, models)
        else:
            theirs = text_outcomes[_job_key((name, params))]
        agree, total, shown = compare(ours, theirs, docs, args.examples)
        kept = sum(1 for v in ours.values.values() if v is True) if kind != "mapper" else None
        results.append({"operator": name, "params": params, "kind": kind, "agree": agree, "docs": total,
                        "share": agree / total, "ours_s": round(ours.seconds, 2),
                        "dj_s": round(theirs.seconds, 2), "kept_ours": kept, "examples": shown})
        mark = "ok" if agree / total >= TARGET else "BELOW TARGET"
        extra = f", kept {kept}" if kept is not None else ""
        label = f"{name} {json.dumps(params, ensure_ascii=False)}"
        print(f"{label:<78} {agree:>6}/{total} = {100 * agree / total:7.3f}%  {mark}"
              f"  (ours {ours.seconds:.1f}s, DJ {theirs.seconds:.1f}s{extra})", flush=True)
        for line in shown:
            print(f"    {line[:400]}")
    below = [r for r in results if r["share"] < TARGET]
    overall = sum(r["agree"] for r in results) / max(1, sum(r["docs"] for r in results))
    print(f"\n{len(results)} checks, {len(below)} below {100 * TARGET:.1f}%; "
          f"overall agreement {100 * overall:.3f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())

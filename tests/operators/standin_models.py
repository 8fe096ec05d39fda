"""Small stand-in models made in the test, never downloaded: a KenLM language model (ARPA
text, which KenLM loads as it loads its binaries), a sentencepiece model trained on bundled
text, a Hugging Face tokenizer trained with `tokenizers`; and a real local HTTP server to
serve them to the fetching code."""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.server
import io
import json
import math
import threading
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"


@functools.lru_cache(maxsize=1)
def bundled_texts(limit: int = 60) -> tuple[str, ...]:
    """Texts of the bundled Debian handbook sample (recipes/samples, see its NOTICE)."""
    texts = []
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        for line in handle:
            texts.append(json.loads(line)["text"])
            if len(texts) >= limit:
                break
    return tuple(texts)


def write_arpa(path: Path, sentences: list[list[str]]) -> Path:
    """A bigram ARPA model with add-one smoothing of unigrams and a constant back-off, from
    tokenized sentences: valid ARPA that KenLM loads."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for tokens in sentences:
        padded = ["<s>", *tokens, "</s>"]
        unigrams.update(padded)
        bigrams.update(zip(padded, padded[1:]))
    unigrams["<unk>"] += 0
    total = sum(unigrams.values()) + len(unigrams)
    lines = ["\\data\\", f"ngram 1={len(unigrams)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    for word in sorted(unigrams):
        probability = -99.0 if word == "<s>" else math.log10((unigrams[word] + 1) / total)
        lines.append(f"{probability:.6f}\t{word}\t-0.301030")
    lines += ["", "\\2-grams:"]
    for (a, b), count in sorted(bigrams.items()):
        lines.append(f"{math.log10(count / unigrams[a]) :.6f}\t{a} {b}")
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_sentencepiece(path: Path, texts: tuple[str, ...], vocab_size: int = 400) -> Path:
    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([line for t in texts for line in t.splitlines() if line.strip()]),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
    )
    path.write_bytes(buffer.getvalue())
    return path


def write_hf_tokenizer(folder: Path, texts: tuple[str, ...]) -> Path:
    """A byte-level BPE tokenizer (GPT-NeoX's kind) trained on ``texts``: folder/tokenizer.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=500, show_progress=False))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


@contextlib.contextmanager
def serve_folder(folder: Path):
    """A real HTTP server on 127.0.0.1 serving ``folder``; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass

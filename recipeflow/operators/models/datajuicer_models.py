"""Model files as Data-Juicer gets them: KenLM ``<lang>.arpa.bin`` and sentencepiece
``<lang>.sp.model`` (Data-Juicer's Wikipedia models), and Hugging Face tokenizers.

Where Data-Juicer 1.6.1 looks (``data_juicer/utils/model_utils.py: check_model``), in order:

1. the name itself, when it is an existing path;
2. each folder of ``DATA_JUICER_EXTERNAL_MODELS_HOME`` (``os.pathsep``-separated);
3. Data-Juicer's model cache: ``DATA_JUICER_MODELS_CACHE``, else
   ``$DATA_JUICER_CACHE_HOME/models``, else ``$CACHE_HOME/data_juicer/models``, else
   ``~/.cache/data_juicer/models``. A file missing there is downloaded into it from
   Data-Juicer's model host (:data:`MODEL_LINKS`), else from the backup
   (:data:`BACKUP_MODEL_LINKS`: the same files on the Hugging Face Hub, ``edugp/kenlm``).

Unlike Data-Juicer, a download goes to a temporary file first and is checked before it is
renamed into place: its size must equal the server's ``Content-Length``, a known SHA-256 (the
sidecar ``<file>.sha256`` written after the first good download, or an entry of
:data:`KNOWN_SHA256`) must match, and the file must load (KenLM / sentencepiece). So a cut-off
download never lands in the cache. With downloads off (``RECIPEFLOW_OFFLINE=1`` or
``HF_HUB_OFFLINE=1``) or no network, the error names the file, where to put it and where it
comes from.

:func:`required_models` tells, for an operator's name and parameters, which model files it
will need and which are missing, for ``recipeflow validate``.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from recipeflow.operators.models.fasttext_models import local_copy

# Data-Juicer 1.6.1's hosts (model_utils.MODEL_LINKS / BACKUP_MODEL_LINKS), for these files.
MODEL_LINKS = "https://dail-wlcb.oss-cn-wulanchabu.aliyuncs.com/data_juicer/models/"
BACKUP_MODEL_LINKS = {
    "*.sp.model": "https://huggingface.co/edugp/kenlm/resolve/main/wikipedia/",
    "*.arpa.bin": "https://huggingface.co/edugp/kenlm/resolve/main/wikipedia/",
}
# Where the hosts can be overridden (a mirror, or a local server in tests): a URL prefix each,
# tried in order, separated by spaces. recipeflow's own variable; Data-Juicer has none.
LINKS_ENV = "RECIPEFLOW_DATAJUICER_MODEL_LINKS"
OFFLINE_ENVS = ("RECIPEFLOW_OFFLINE", "HF_HUB_OFFLINE")
# SHA-256 of files whose content is known; a sidecar "<file>.sha256" records the rest after
# their first good download (trust on first use), and later loads check against it.
KNOWN_SHA256: dict[str, str] = {}
DEFAULT_HF_TOKENIZER = "EleutherAI/pythia-6.9b-deduped"  # alphanumeric_filter's
_TIMEOUT_S = 60


class ModelUnavailable(FileNotFoundError):
    """A model file that is neither present nor obtainable; the message says what to do."""


def models_cache() -> str:
    """Data-Juicer's model cache folder, from its environment variables."""
    if os.environ.get("DATA_JUICER_MODELS_CACHE"):
        return os.path.expanduser(os.environ["DATA_JUICER_MODELS_CACHE"])
    cache_home = os.environ.get("CACHE_HOME", "~/.cache")
    dj_home = os.path.expanduser(os.environ.get("DATA_JUICER_CACHE_HOME", os.path.join(cache_home, "data_juicer")))
    return os.path.join(dj_home, "models")


def external_model_homes() -> list[str]:
    return [p.strip() for p in os.environ.get("DATA_JUICER_EXTERNAL_MODELS_HOME", "").split(os.pathsep) if p.strip()]


def download_sources(file_name: str) -> list[str]:
    """The URLs ``file_name`` is fetched from, in order (Data-Juicer's, unless overridden)."""
    override = os.environ.get(LINKS_ENV)
    if override:
        return [prefix.rstrip("/") + "/" + file_name for prefix in override.split()]
    urls = [MODEL_LINKS + file_name]
    urls += [base + file_name for pattern, base in BACKUP_MODEL_LINKS.items() if fnmatch.fnmatch(file_name, pattern)]
    return urls


def downloads_allowed() -> bool:
    return not any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in OFFLINE_ENVS)


def find_model(file_name: str) -> str | None:
    """The path of ``file_name`` where Data-Juicer would find it, or ``None``."""
    if os.path.isfile(file_name):
        return file_name
    for home in external_model_homes():
        candidate = os.path.join(home, file_name)
        if os.path.isfile(candidate):
            return candidate
    candidate = os.path.join(models_cache(), file_name)
    return candidate if os.path.isfile(candidate) else None


def unavailable_message(file_name: str, why: str, parameter: str | None = None) -> str:
    sources = " or ".join(download_sources(file_name))
    where = os.path.join(models_cache(), file_name)
    hint = f", or set `{parameter}` to its path" if parameter else ""
    return (
        f"model file {file_name!r} is missing ({why}). Put it at {where} (Data-Juicer's model "
        f"cache: DATA_JUICER_MODELS_CACHE / DATA_JUICER_CACHE_HOME / CACHE_HOME move it), or in a "
        f"folder named by DATA_JUICER_EXTERNAL_MODELS_HOME{hint}. It comes from {sources}"
    )


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_sha256(path: str) -> str | None:
    name = os.path.basename(path)
    if name in KNOWN_SHA256:
        return KNOWN_SHA256[name]
    sidecar = path + ".sha256"
    if os.path.isfile(sidecar):
        with open(sidecar, encoding="utf-8") as handle:
            words = handle.read().split()
        return words[0] if words else None
    return None


def verify(path: str, loader: Callable[[str], Any] | None) -> tuple[Any, str | None]:
    """(the loaded model, ``None``) when the file at ``path`` is good, else (``None``, why
    not: its checksum, or it does not load). The model is loaded once, here."""
    expected = expected_sha256(path)
    if expected is not None and file_sha256(path) != expected:
        return None, f"its SHA-256 is not the recorded {expected}"
    if loader is None:
        return None, None
    try:
        return loader(path), None
    except Exception as error:  # noqa: BLE001 - any load failure means a bad file
        return None, f"it does not load: {error}"


def _download(url: str, target: str) -> None:
    """``url`` into ``target`` through a temporary file, checked against Content-Length."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=os.path.dirname(target), prefix=os.path.basename(target) + ".", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            expected = response.headers.get("Content-Length")
            shutil.copyfileobj(response, out, length=1 << 20)
        received = os.path.getsize(partial)
        if expected is not None and int(expected) != received:
            raise OSError(f"received {received} bytes of {expected} from {url}")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def ensure_model(file_name: str, loader: Callable[[str], Any] | None = None, parameter: str | None = None) -> str:
    """The local path of Data-Juicer's model ``file_name``: found where Data-Juicer looks, else
    downloaded into its cache as Data-Juicer does (checked: size, checksum, loads).
    :class:`ModelUnavailable` when that cannot be done."""
    return obtain_model(file_name, loader, parameter)[0]


def obtain_model(
    file_name: str, loader: Callable[[str], Any] | None = None, parameter: str | None = None
) -> tuple[str, Any]:
    """(path, model loaded by ``loader``) of Data-Juicer's model ``file_name``, found or
    fetched as :func:`ensure_model` says; the model is loaded once (KenLM models are large)."""
    found = find_model(file_name)
    if found is not None:
        model, problem = verify(found, loader)
        if problem is None:
            return found, model
        if os.path.dirname(os.path.abspath(found)) != os.path.abspath(models_cache()):
            raise ModelUnavailable(f"model file {found} is not usable: {problem}")
        why = f"the cached copy is not usable: {problem}"
    else:
        why = "not found"
    if not downloads_allowed():
        raise ModelUnavailable(unavailable_message(file_name, why + "; downloads are off (RECIPEFLOW_OFFLINE / HF_HUB_OFFLINE)", parameter))
    target = os.path.join(models_cache(), file_name)
    failures = []
    for url in download_sources(file_name):
        try:
            _download(url, target)
        except (OSError, urllib.error.URLError, ValueError) as error:
            failures.append(f"{url}: {error}")
            continue
        # A fresh download has no recorded checksum yet: a stale sidecar must not veto it.
        if os.path.exists(target + ".sha256") and file_name not in KNOWN_SHA256:
            os.remove(target + ".sha256")
        model, problem = verify(target, loader)
        if problem is None:
            with open(target + ".sha256", "w", encoding="utf-8") as sidecar:
                sidecar.write(file_sha256(target) + "  " + file_name + "\n")
            return target, model
        os.remove(target)
        failures.append(f"{url}: downloaded, but {problem}")
    raise ModelUnavailable(unavailable_message(file_name, why + "; download failed: " + "; ".join(failures), parameter))


# --------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------


def _load_kenlm_file(path: str):
    import kenlm

    return kenlm.Model(path)


def _load_sentencepiece_file(path: str):
    import sentencepiece

    model = sentencepiece.SentencePieceProcessor()
    if not model.load(path):
        raise OSError(f"sentencepiece could not load {path}")
    return model


@functools.lru_cache(maxsize=8)
def load_datajuicer_kenlm(lang: str, model_path: str | None = None):
    """KenLM model of ``lang`` (``<lang>.arpa.bin``), or the file at ``model_path``."""
    if model_path:  # any fsspec path, read as before
        return load_kenlm(model_path, "model_path")
    return obtain_model(f"{lang}.arpa.bin", _load_kenlm_file, "model_path")[1]


@functools.lru_cache(maxsize=8)
def load_datajuicer_sentencepiece(lang: str, sp_model_path: str | None = None):
    """sentencepiece model of ``lang`` (``<lang>.sp.model``), or the file at ``sp_model_path``."""
    if sp_model_path:  # any fsspec path, read as before
        return load_sentencepiece(sp_model_path, "sp_model_path")
    return obtain_model(f"{lang}.sp.model", _load_sentencepiece_file, "sp_model_path")[1]


def hf_tokenizer_file(name_or_path: str) -> str:
    """``tokenizer.json`` of a Hugging Face tokenizer: in a local folder, else in the Hugging
    Face cache (``HF_HOME`` / ``HF_HUB_CACHE``), else downloaded from the Hub as Data-Juicer's
    ``from_pretrained`` does (unless ``HF_HUB_OFFLINE`` / ``RECIPEFLOW_OFFLINE``)."""
    if os.path.isdir(name_or_path):
        path = os.path.join(name_or_path, "tokenizer.json")
        if os.path.isfile(path):
            return path
        raise ModelUnavailable(f"tokenizer folder {name_or_path} has no tokenizer.json (a Hugging Face fast tokenizer)")
    if os.path.isfile(name_or_path):
        return name_or_path
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(name_or_path, "tokenizer.json")
    if isinstance(cached, str):
        return cached
    message = (
        f"Hugging Face tokenizer {name_or_path!r} is not in the Hugging Face cache "
        f"({_hf_cache_dir()}). Download it there where there is network (`hf download "
        f"{name_or_path} tokenizer.json`), or set `hf_tokenizer` to a local folder holding its "
        f"tokenizer.json. It comes from https://huggingface.co/{name_or_path}"
    )
    if not downloads_allowed():
        raise ModelUnavailable(message + " (downloads are off: RECIPEFLOW_OFFLINE / HF_HUB_OFFLINE)")
    try:
        return hf_hub_download(name_or_path, "tokenizer.json")
    except Exception as error:  # noqa: BLE001 - network, auth or missing repository
        raise ModelUnavailable(f"{message} (download failed: {error})") from None


def _hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


@functools.lru_cache(maxsize=4)
def load_hf_tokenizer(name_or_path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(hf_tokenizer_file(name_or_path))


# --------------------------------------------------------------------------------------------
# What validate checks
# --------------------------------------------------------------------------------------------


@dataclass
class ModelRequirement:
    """A model file an operator will load."""

    file_name: str  # what Data-Juicer calls it, or the path / Hub id the recipe gave
    parameter: str  # the parameter that names it (to point at a local copy)
    kind: str  # "kenlm" | "sentencepiece" | "hf_tokenizer"
    path: str | None = None  # where it is, when present
    sources: list[str] = field(default_factory=list)

    @property
    def missing(self) -> bool:
        return self.path is None

    def message(self) -> str:
        if self.kind == "hf_tokenizer":
            return (
                f"Hugging Face tokenizer {self.file_name!r} is not available offline: put it in the "
                f"Hugging Face cache ({_hf_cache_dir()}) or set `{self.parameter}` to a local folder; "
                f"it comes from https://huggingface.co/{self.file_name}"
            )
        return unavailable_message(self.file_name, "not found", self.parameter)


def _cache_file(file_name: str, kind: str, parameter: str) -> ModelRequirement:
    return ModelRequirement(file_name, parameter, kind, find_model(file_name), download_sources(file_name))


def _given_file(path: str, kind: str, parameter: str) -> ModelRequirement:
    present = os.path.isfile(path) or "://" in path  # remote URLs are checked when read
    return ModelRequirement(path, parameter, kind, path if present else None)


def _hf(name_or_path: str, parameter: str) -> ModelRequirement:
    try:
        if os.path.isdir(name_or_path) or os.path.isfile(name_or_path):
            path = hf_tokenizer_file(name_or_path)
        else:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name_or_path, "tokenizer.json")
            path = cached if isinstance(cached, str) else None
    except ModelUnavailable:
        path = None
    return ModelRequirement(name_or_path, parameter, "hf_tokenizer", path, [f"https://huggingface.co/{name_or_path}"])


# Operators whose `tokenization: true` tokenizes words with <lang>.sp.model (Data-Juicer's).
_SENTENCEPIECE_WORD_OPERATORS = frozenset({
    "words_num_filter", "stopwords_filter", "flagged_words_filter", "word_repetition_filter",
    "remove_words_with_incorrect_substrings_mapper",
})


def required_models(operator: str, params: Mapping[str, Any]) -> list[ModelRequirement]:
    """The model files the operator ``operator`` with ``params`` (as written in the recipe,
    defaults filled in by the operator's ``Params``) will load, each with where it was found
    (``path``; ``None``: missing, see :meth:`ModelRequirement.message`)."""
    lang = str(params.get("lang") or "en")
    out: list[ModelRequirement] = []

    def sentencepiece(parameter: str = "sp_model_path") -> None:
        given = params.get(parameter)
        out.append(
            _given_file(given, "sentencepiece", parameter) if given
            else _cache_file(f"{lang}.sp.model", "sentencepiece", parameter)
        )

    if operator == "perplexity_filter":
        given = params.get("model_path")
        out.append(
            _given_file(given, "kenlm", "model_path") if given else _cache_file(f"{lang}.arpa.bin", "kenlm", "model_path")
        )
        if params.get("tokenizer", "sentencepiece") == "sentencepiece":
            sentencepiece()
    elif operator in _SENTENCEPIECE_WORD_OPERATORS and params.get("tokenization"):
        sentencepiece()
    elif operator == "alphanumeric_filter" and params.get("tokenization"):
        out.append(_hf(str(params.get("hf_tokenizer") or DEFAULT_HF_TOKENIZER), "hf_tokenizer"))
    elif operator == "token_num_filter":
        out.append(_hf(str(params.get("hf_tokenizer") or DEFAULT_HF_TOKENIZER), "hf_tokenizer"))
    return out


def missing_models(steps: list[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """One message per missing model file over a recipe's steps ``(operator, params)``; the
    same file is reported once."""
    seen: set[tuple[str, str]] = set()
    messages = []
    for operator, params in steps:
        for requirement in required_models(operator, params):
            key = (requirement.kind, requirement.file_name)
            if requirement.missing and key not in seen:
                seen.add(key)
                messages.append(f"{operator}: {requirement.message()}")
    return messages


def fetch_missing_models(steps: list[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Fetch, as a run would on first use, every model file of ``steps`` that is missing
    (downloaded into Data-Juicer's cache, checked); one message per file that still cannot be
    had. A run calls this before any work, so a missing model never fails it half-way."""
    seen: set[tuple[str, str]] = set()
    messages = []
    for operator, params in steps:
        for requirement in required_models(operator, params):
            key = (requirement.kind, requirement.file_name)
            if not requirement.missing or key in seen:
                continue
            seen.add(key)
            try:
                if requirement.kind == "hf_tokenizer":
                    hf_tokenizer_file(requirement.file_name)
                elif requirement.sources:  # one of Data-Juicer's files: fetched into its cache
                    ensure_model(requirement.file_name, None, requirement.parameter)
                else:  # a path the recipe gave: nothing to fetch
                    raise ModelUnavailable(requirement.message())
            except ModelUnavailable as error:
                messages.append(f"{operator}: {error}")
    return messages


# --------------------------------------------------------------------------------------------
# Models (sentencepiece tokenizers, KenLM language models)
# --------------------------------------------------------------------------------------------


def datajuicer_models_cache() -> str:
    """Data-Juicer's model cache folder (``DATA_JUICER_MODELS_CACHE``, else
    ``$DATA_JUICER_CACHE_HOME/models``, else ``$CACHE_HOME/data_juicer/models``, else
    ``~/.cache/data_juicer/models``), where Data-Juicer keeps ``<lang>.sp.model`` and
    ``<lang>.arpa.bin``."""
    if os.environ.get("DATA_JUICER_MODELS_CACHE"):
        return os.environ["DATA_JUICER_MODELS_CACHE"]
    cache_home = os.environ.get("CACHE_HOME", "~/.cache")
    dj_home = os.environ.get("DATA_JUICER_CACHE_HOME", os.path.join(cache_home, "data_juicer"))
    return os.path.join(os.path.expanduser(dj_home), "models")


def datajuicer_model_path(file_name: str) -> str:
    """Where Data-Juicer would look for the model ``file_name``."""
    return os.path.join(datajuicer_models_cache(), file_name)


def _require_model_file(url: str, what: str, parameter: str) -> str:
    path = local_copy(url)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{what} not found: {url}. Set `{parameter}` to its path (any fsspec URL); "
            "recipeflow does not download models"
        )
    return path


@functools.lru_cache(maxsize=8)
def load_sentencepiece(url: str, parameter: str = "sp_model_path"):
    """A sentencepiece model, loaded once per process."""
    try:
        import sentencepiece
    except ImportError:
        raise ImportError(
            "this setting tokenizes with sentencepiece, as Data-Juicer does, but the "
            "`sentencepiece` package is not installed: `pip install sentencepiece`"
        ) from None
    path = _require_model_file(url, "sentencepiece model", parameter)
    model = sentencepiece.SentencePieceProcessor()
    model.load(path)
    return model


@functools.lru_cache(maxsize=8)
def load_kenlm(url: str, parameter: str = "model_path"):
    """A KenLM language model (ARPA text or KenLM binary), loaded once per process."""
    import kenlm

    return kenlm.Model(_require_model_file(url, "KenLM model", parameter))

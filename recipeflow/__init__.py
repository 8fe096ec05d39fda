"""recipeflow: declarative data recipes for LLM training corpora, run as Prefect flows."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recipeflow")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

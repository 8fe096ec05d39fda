"""``embed``: a fixed-size vector per document from a text encoder (GPU pool when present).

The vector is for the operators after it (``semantic_dedup``, ``model_classifier`` with a
trained head): by default (``keep: false``) it is written as the working column
``__<field>`` (``__embedding``), which the engine strips before a dataset is written (every
column whose name starts with ``__``, see ``document.ORIGIN``); ``keep: true`` writes it as
the field ``<field>`` (``embedding``), stored with the documents.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from recipeflow.operators import document as doc
from recipeflow.operators.base import Mapper, OperatorParams, Resource
from recipeflow.operators.models.embedding_models import (
    BUNDLED_MINILM,
    TextEncoder,
    describe_encoder,
    encoder,
)
from recipeflow.operators.registry import register

Dtype = Literal["auto", "float32", "float16", "bfloat16"]


class EncoderParams(OperatorParams):
    """How a text encoder runs: shared by ``embed`` and ``model_classifier``."""

    batch_size: int = Field(64, ge=1, description="Texts per forward pass.")
    max_length: int | None = Field(
        None, ge=1, description="Tokens per text (longer texts are truncated). Default: the "
        "model's own (256 for all-MiniLM-L6-v2; at most 512 for plain transformers folders).")
    dtype: Dtype = Field("auto", description="Weights' dtype; `auto`: float16 on a GPU, "
                         "float32 on the CPU.")
    device: str = Field("auto", description="`auto` (cuda when torch sees a GPU, else cpu), "
                        "`cpu`, `cuda` or `cuda:N`.")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda", "mps") and not value.startswith("cuda:"):
            raise ValueError(f"device is auto, cpu, cuda, cuda:N or mps; got {value!r}")
        return value


class EmbedParams(EncoderParams):
    model: str = Field(
        BUNDLED_MINILM, description="A sentence-transformers folder, a transformers folder "
        "(mean pooling), either on object storage, or `all-minilm-l6-v2` (bundled). Never "
        "downloaded from a hub.")
    field: str = Field("embedding", description="Name of the embedding field.")
    keep: bool = Field(
        False, description="Store the embedding with the documents. False (default): it is "
        "only seen by the operators after this one (the working column `__<field>`).")
    normalize: bool = Field(True, description="Scale vectors to unit length (cosine = dot).")

    @field_validator("field")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if value.startswith("__") or value in (doc.ID, doc.TEXT):
            raise ValueError(f"field {value!r} is reserved; use a plain name such as `embedding`")
        return value


@register
class Embed(Mapper):
    """Embed each document's text with a sentence encoder (bundled all-MiniLM-L6-v2 by default).

    Writes a fixed-size float32 list per document: the working column ``__embedding`` that the
    next operators read and the dataset never stores, or with ``keep: true`` the field
    ``embedding``. Empty texts get the encoder's vector of the empty string. The model
    folder's sha256 is in the manifest (:meth:`provenance`) and so in every cache key.
    """

    name = "embed"
    version = "1"
    resource = Resource.gpu
    Params = EmbedParams

    def __init__(self, params=None):
        super().__init__(params)
        self._encoder: TextEncoder | None = None

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            p = self.params
            self._encoder = encoder(p.model, p.device, p.dtype, p.max_length)
        return self._encoder

    @property
    def column(self) -> str:
        """The column written: ``<field>`` when kept, ``__<field>`` otherwise."""
        return self.params.field if self.params.keep else f"__{self.params.field}"

    def provenance(self) -> dict[str, Any]:
        """From the model's files (planning loads no weights); a missing or wrong model
        folder is an error naming `model` here, before any work."""
        info = describe_encoder(self.params.model)
        return {"model": self.params.model, "sha256": info.sha256, "dim": info.dim,
                "normalize": self.params.normalize, "column": self.column}

    def map_batch(self, batch: pa.Table) -> pa.Table:
        texts = [t or "" for t in batch.column(doc.TEXT).to_pylist()]
        vectors = self.encoder.encode(texts, self.params.batch_size, self.params.normalize)
        return doc.set_column(batch, self.column, vectors_to_arrow(vectors))


def vectors_to_arrow(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """A float32 matrix as a fixed-size list column (no copy of the values)."""
    flat = pa.array(np.ascontiguousarray(vectors, np.float32).reshape(-1), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, int(vectors.shape[1]))

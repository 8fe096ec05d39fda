"""What ``recipeflow ops`` shows: operators and their parameters, from the registry."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic_core import PydanticUndefined

from recipeflow.operators import registry
from recipeflow.operators.base import STREAMABLE_KINDS


def list_operators() -> list[dict[str, Any]]:
    return [
        {"name": name, "kind": cls.kind.value, "resource": cls.resource.value, "summary": cls.summary()}
        for name, cls in registry.operators().items()
    ]


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if inspect.isclass(annotation) else None
    return text or str(annotation).replace("typing.", "")


def describe_operator(name: str) -> dict[str, Any]:
    cls = registry.get(name)
    parameters = []
    for field_name, info in cls.Params.model_fields.items():
        default = None if info.default is PydanticUndefined else info.default
        parameters.append(
            {
                "name": field_name,
                "type": _type_name(info.annotation),
                "default": default,
                "required": info.is_required(),
                "description": info.description or "",
            }
        )
    return {
        "name": name,
        "kind": cls.kind.value,
        "resource": cls.resource.value,
        "version": cls.version,
        "streamable": cls.kind in STREAMABLE_KINDS,
        "summary": cls.summary(),
        "doc": inspect.cleandoc(cls.__doc__ or ""),
        "parameters": parameters,
        "json_schema": cls.Params.model_json_schema(),
    }

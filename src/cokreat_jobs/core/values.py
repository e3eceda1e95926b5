"""Small facts about JSON-like values, shared by config, event parsing and the stores."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["compact_json", "deep_merge", "type_name"]


def type_name(value: Any) -> str:
    """The JSON name of a value's type, as error messages say it ("must be a string, got number")."""
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):  # before int: a bool is an int in Python
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return type(value).__name__


def compact_json(value: Any) -> str:
    """JSON without spaces, non-ASCII kept: how the stores hold object-valued properties."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Merge ``source`` into ``target`` in place: nested objects merge, anything else replaces (with a copy,
    so ``target`` never shares a list or object with ``source``)."""
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)

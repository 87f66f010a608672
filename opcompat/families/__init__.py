"""The op families opcompat knows: every module in this folder registers one (``opcompat.family``).

Importing this package imports each module (so a new family file is picked up by dropping it here);
``opcompat.family.get(name)`` then finds it. Case files name a family with ``Case(..., family=name)``.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..family import FAMILIES, Family, get, register

__all__ = ["FAMILIES", "Family", "get", "register"]

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

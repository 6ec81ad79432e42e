"""Lazy re-exports for the packages' ``__init__`` modules (PEP 562 ``__getattr__`` and ``__dir__``).

Every supportloop package re-exports its public API from the modules that define it, imported on
first access, so that ``import agent`` or ``supportloop --help`` pulls in no torch, chromadb or web
framework. The helper lives here only because ``knowledge`` is the bottom layer: every package may
import it and it imports nothing of ours. It imports nothing but ``importlib``.

    from knowledge.lazy import lazy_exports

    _EXPORTS = {"Agent": "agent.runtime", ...}  # public name -> module defining it
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, which re-exports each name of ``exports``
    (name -> module) from its module, imported when the name is first read; ``dir()`` lists the
    package's ``__all__``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(getattr(sys.modules[package], "__all__", exports))

    return __getattr__, __dir__

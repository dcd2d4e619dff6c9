"""Lazy package namespaces (PEP 562), shared by the package inits of anonpriv's subpackages and of the baselines.

A package lists its public names and the submodules defining them; nothing is imported until a name
is asked for. The first name asked for imports every listed submodule, as an eager package would
(so that, e.g., jsonargparse knows every subclass), while importing one submodule directly stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, namespace: dict, exports: Mapping[str, str]) -> tuple[Callable, Callable]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` (whose ``globals()`` is
    ``namespace``) for ``exports``: public name -> submodule that defines it."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        for export, module in exports.items():
            namespace[export] = getattr(importlib.import_module(f"{package}.{module}"), export)
        return namespace[name]

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__

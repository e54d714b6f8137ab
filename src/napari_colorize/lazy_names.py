"""Names of a package that import their module on first use (PEP 562).

``napari_colorize.data`` and ``napari_colorize.training`` offer their
datasets, trainers and events at the package level without importing torch
when the package is imported (the CLI's ``--help`` and the napari manifest
stay fast).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

__all__ = ["lazy_names"]


def lazy_names(
    package: str, table: Mapping[str, str], namespace: dict
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    table : mapping of str to str
        Name -> the submodule (relative to ``package``) that defines it.
    namespace : dict
        The package's ``globals()``; ``__dir__`` lists them with ``__all__``.
    """

    def __getattr__(name: str):
        if name in table:
            module = importlib.import_module(f".{table[name]}", package)
            return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__

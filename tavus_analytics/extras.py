"""Optional parts, and the one line that says which extra to install when one is missing.

The base install runs the collector on SQLite and the analytics; PostgreSQL, the faster servers,
JupyterLab, content analysis and the tunnel are extras (``pip install 'tavus-analytics[NAME]'``).
Code that needs an optional package imports it through :func:`require`, so that a missing one is
a :class:`~tavus_analytics.errors.MissingExtra` naming the extra, never an ImportError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtra


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra`: "``what`` needs the optional package
    ``module``: pip install 'tavus-analytics[``extra``]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MissingExtra(
            f"{what} needs the optional package {package}: pip install 'tavus-analytics[{extra}]'",
            extra=extra,
        ) from None

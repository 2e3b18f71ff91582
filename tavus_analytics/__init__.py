"""tavus-analytics: collect Tavus conversational video callbacks and analyse them."""

from .app import create_app
from .config import Settings
from .database import display_url, is_postgres, open_store
from .errors import (
    DatabaseNotFound,
    InvalidCallback,
    PayloadTooLarge,
    StoreUnavailable,
    TavusAnalyticsError,
)
from .load import Dataset, load
from .store import Store

__all__ = [
    "DatabaseNotFound",
    "Dataset",
    "InvalidCallback",
    "PayloadTooLarge",
    "Settings",
    "Store",
    "StoreUnavailable",
    "TavusAnalyticsError",
    "charts",
    "create_app",
    "display_url",
    "is_postgres",
    "load",
    "open_store",
]


def __getattr__(name: str):
    # ``ta.charts`` imports matplotlib: only when first used, not in the collector.
    if name == "charts":
        import importlib

        return importlib.import_module(".charts", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

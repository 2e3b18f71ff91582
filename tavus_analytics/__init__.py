"""tavus-analytics: collect Tavus conversational video callbacks and analyse them."""

from .app import create_app
from .config import Settings
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
    "create_app",
    "load",
]

"""tavus-analytics: collect Tavus conversational video callbacks and analyse them."""

from .app import create_app
from .config import Settings
from .conversation import Conversation
from .dataset import Dataset, load
from .errors import (
    ConversationNotFound,
    DatabaseNotFound,
    InvalidCallback,
    InvalidCriteria,
    PayloadTooLarge,
    StoreUnavailable,
    TavusAnalyticsError,
)
from .store import Store, display_url, open_store

__all__ = [
    "Conversation",
    "ConversationNotFound",
    "DatabaseNotFound",
    "Dataset",
    "InvalidCallback",
    "InvalidCriteria",
    "PayloadTooLarge",
    "Settings",
    "Store",
    "StoreUnavailable",
    "TavusAnalyticsError",
    "charts",
    "content",
    "create_app",
    "display_url",
    "load",
    "open_store",
]


def __getattr__(name: str):
    # ``ta.charts`` imports matplotlib, ``ta.content`` the nlp extra's packages when used: only
    # when first used, not in the collector.
    if name in ("charts", "content"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

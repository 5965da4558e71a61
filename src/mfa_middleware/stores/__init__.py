"""State stores: one small contract (`Store`), implemented in memory, SQLite and Redis."""

from mfa_middleware.stores.base import Store
from mfa_middleware.stores.memory import MemoryStore
from mfa_middleware.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "Store"]

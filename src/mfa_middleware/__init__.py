"""mfa_middleware: two-factor authentication for any ASGI or WSGI app.

app.add_middleware(MFAMiddleware, config=MFAConfig(secret_keys=[...], store=SQLiteStore(...)))
"""

from mfa_middleware.asgi import MFAMiddleware
from mfa_middleware.config import MFAConfig
from mfa_middleware.core.mfa_state import MFAState
from mfa_middleware.core.principal import Principal
from mfa_middleware.errors import ConfigError, DeliveryFailed, MFAError, StoreError
from mfa_middleware.stores import MemoryStore, SQLiteStore, Store

__all__ = [
    "ConfigError",
    "DeliveryFailed",
    "MFAConfig",
    "MFAError",
    "MFAMiddleware",
    "MFAState",
    "MemoryStore",
    "Principal",
    "SQLiteStore",
    "Store",
    "StoreError",
]

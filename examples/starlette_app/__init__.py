"""A small real Starlette app protected by mfa_middleware (the README's demo)."""

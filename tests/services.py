"""The outside services some tests need: required in CI, skipped with a reason elsewhere."""

from __future__ import annotations

import os

import pytest

POSTGRES_ADMIN = os.environ.get(
    "THREADQL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("THREADQL_TEST_REDIS", "redis://127.0.0.1:6379/0")

# What test servers sign their tokens with: long enough for HS256.
SECRET = "a test secret that is long enough for HS256 signing"


def unavailable(service: str, error: BaseException) -> None:
    """Fail in CI, where every service must be there; skip with the reason elsewhere."""
    reason = f"{service} is not reachable: {error}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true requires it)")
    pytest.skip(reason)

"""Pseudonymisation of patient and image identifiers with a secret salt (HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac
import os

from radscreen.errors import UserError

SALT_ENV = "RADSCREEN_SALT"
DIGEST_CHARS = 16  # 64 bits: collision-free in practice for millions of patients


class SaltError(UserError, ValueError):
    """No pseudonymisation salt was given: one line for the user (still a ValueError for older callers)."""


def resolve_salt(salt: str | None = None, env_var: str = SALT_ENV) -> str:
    """The salt from the argument or the environment; SaltError (one line) when neither is set."""
    value = salt if salt else os.environ.get(env_var, "")
    if not value:
        raise SaltError(
            f"no pseudonymisation salt: set the environment variable {env_var} (or pass --salt / "
            "manifest.salt); keep it secret and the same for every manifest of one study"
        )
    return value


def pseudonymise(raw_id: object, salt: str, prefix: str = "p") -> str:
    """A stable pseudonym for an identifier: prefix + the first 16 hex digits of HMAC-SHA256(salt, id)."""
    text = str(raw_id).strip()
    if not text:
        raise ValueError("empty identifier cannot be pseudonymised")
    digest = hmac.new(salt.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{prefix}{digest[:DIGEST_CHARS]}"

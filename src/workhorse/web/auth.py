"""API keys and the principals they stand for.

A key is a random token shown once at creation; the store keeps only its SHA-256 (the
token has 256 bits of entropy, so a fast hash is enough). Each key is bound to one
tenant, or is an admin key that sees every tenant; either may be read-only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from workhorse.backends.base import ApiKeyRecord
from workhorse.errors import ConfigurationError

if TYPE_CHECKING:
    from workhorse.app import Workhorse
    from workhorse.jobs import JobRecord

TOKEN_PREFIX = "whk_"  # noqa: S105 - a public prefix, not a secret
_MAX_TOKEN_LENGTH = 256
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


def hash_token(token: str) -> str:
    """The stored form of a token (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as resolved from an API key (or a dashboard session)."""

    key_id: str
    tenant: str | None
    """The only tenant this principal may see; None for admins."""
    admin: bool = False
    read_only: bool = False
    name: str | None = None
    session_ref: str = ""
    """What a dashboard session remembers to find this principal again (the key hash)."""

    def tenant_scope(self, requested: str | None = None) -> str | None:
        """The tenant to filter by: admins pick any (None: all); others get their own."""
        return requested if self.admin else self.tenant

    def owns(self, job: JobRecord) -> bool:
        """True if this principal may see ``job``."""
        return self.admin or job.tenant == self.tenant

    @property
    def label(self) -> str:
        """A short description for logs and the dashboard."""
        who = "admin" if self.admin else f"tenant {self.tenant}"
        return f"{who}{' (read-only)' if self.read_only else ''}"


class Authenticator(Protocol):
    """Turns credentials into principals. The default checks workhorse API keys; pass
    your own to ``create_router(auth=...)`` to plug in another scheme."""

    async def authenticate(self, token: str) -> Principal | None:
        """The principal a bearer token stands for, or None."""
        ...

    async def resume(self, session_ref: str) -> Principal | None:
        """The principal behind a dashboard session (``Principal.session_ref``), or None
        if its credential was revoked since."""
        ...


def _principal(record: ApiKeyRecord) -> Principal:
    return Principal(
        key_id=record.id,
        tenant=None if record.admin else record.tenant,
        admin=record.admin,
        read_only=record.read_only,
        name=record.name,
        session_ref=record.key_hash,
    )


class ApiKeyAuthenticator:
    """Checks tokens against the API keys in the app's store (``workhorse keys``)."""

    def __init__(self, app: Workhorse) -> None:
        self.app = app

    async def authenticate(self, token: str) -> Principal | None:
        """The key's principal, or None for an unknown or revoked token."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
            return None
        return await self.resume(hash_token(token))

    async def resume(self, session_ref: str) -> Principal | None:
        """The principal of the key whose hash is ``session_ref``, if still valid."""
        store = await self.app.backend()
        record = await store.api_key_get(key_hash=session_ref)
        # The lookup matched on the hash already; compare again in constant time so
        # that no code path decides on a variable-time string comparison.
        if record is None or not hmac.compare_digest(record.key_hash, session_ref):
            return None
        if record.revoked_at is not None:
            return None
        return _principal(record)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``token`` is shown once and never stored."""

    token: str
    record: ApiKeyRecord


async def create_api_key(
    app: Workhorse,
    *,
    tenant: str | None = None,
    admin: bool = False,
    read_only: bool = False,
    name: str | None = None,
) -> IssuedKey:
    """Create a key bound to ``tenant`` (or an admin key, for every tenant)."""
    if admin == (tenant is not None):
        raise ConfigurationError("an API key needs either a tenant or admin=True (not both)")
    if tenant is not None and not _TENANT.match(tenant):
        raise ConfigurationError(
            f"invalid tenant {tenant!r}: letters, digits and _.:@- (up to 128 characters)"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store = await app.backend()
    record = await store.api_key_insert(
        id=secrets.token_hex(6),
        key_hash=hash_token(token),
        name=name,
        tenant=tenant,
        admin=admin,
        read_only=read_only,
    )
    return IssuedKey(token=token, record=record)


async def list_api_keys(app: Workhorse, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
    """The app's API keys (never their tokens), oldest first."""
    store = await app.backend()
    return await store.api_key_list(include_revoked=include_revoked)


async def revoke_api_key(app: Workhorse, key_id: str) -> bool:
    """Revoke a key by id; its sessions end too. False if there is no such live key."""
    store = await app.backend()
    return await store.api_key_revoke(key_id=key_id)

"""API keys at rest and on the wire: the store keeps only a key's SHA-256, never the
token, and the check that accepts a token ends in a constant-time comparison."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from workhorse import Workhorse
from workhorse.web import auth, create_api_key
from workhorse.web.auth import ApiKeyAuthenticator


async def test_keys_are_stored_as_sha256_hashes_only(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    app = Workhorse(f"sqlite:///{path}")
    try:
        issued = await create_api_key(app, tenant="acme")
        (stored,) = await (await app.backend()).api_key_list()
    finally:
        await app.aclose()
    assert stored.key_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    secret = issued.token.removeprefix(auth.TOKEN_PREFIX).encode()
    files = [p for p in tmp_path.iterdir() if p.name.startswith(path.name)]
    assert files, "the store wrote no file"
    for file in files:  # the database, its WAL and whatever else SQLite keeps
        assert secret not in file.read_bytes(), f"{file.name} holds the token"


async def test_a_token_is_accepted_only_through_a_constant_time_comparison(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def compare_digest(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    app = Workhorse(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        issued = await create_api_key(app, tenant="acme")
        checker = ApiKeyAuthenticator(app)
        principal = await checker.authenticate(issued.token)
        assert principal is not None
        assert principal.tenant == "acme"
        expected = hashlib.sha256(issued.token.encode()).hexdigest()
        assert compared == [(expected, expected)], "acceptance went through compare_digest"
        assert await checker.authenticate(issued.token[:-1] + "x") is None
        assert await checker.authenticate("whk_" + "A" * 43) is None
    finally:
        await app.aclose()

"""Webhook signatures and bodies, as a receiver sees them."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import orjson

from workhorse.webhooks import sign, verify_signature
from workhorse.webhooks.event import body
from workhorse.webhooks.signing import new_secret


def test_the_signature_is_an_hmac_sha256_of_the_raw_body() -> None:
    secret, raw = "whsec_test", b'{"id": 1}'
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    assert sign(secret, raw) == f"sha256={expected}"
    assert verify_signature(secret, raw, f"sha256={expected}")


def test_bad_signatures_are_refused() -> None:
    raw = b"{}"
    good = sign("s", raw)
    assert not verify_signature("other", raw, good)
    assert not verify_signature("s", b"{ }", good)
    assert not verify_signature("s", raw, good.removeprefix("sha256="))
    assert not verify_signature("s", raw, None)
    assert not verify_signature("s", raw, "")


def test_secrets_are_long_and_fresh() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert len(first) >= 40


def test_every_store_time_format_becomes_iso_utc() -> None:
    moment = datetime(2026, 11, 1, 5, 30, 0, 250000, tzinfo=UTC)
    event = {
        "id": 3,
        "created_at": moment.timestamp(),  # SQLite: epoch seconds
        "started_at": "2026-11-01T01:30:00.25-04:00",  # PostgreSQL: ISO with an offset
        "finished_at": None,
    }
    sent = orjson.loads(body(event))
    assert sent == {
        "id": 3,
        "created_at": "2026-11-01T05:30:00.250000Z",
        "started_at": "2026-11-01T05:30:00.250000Z",
        "finished_at": None,
    }

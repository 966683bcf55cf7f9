"""``redact_url``, which every log line, banner and error message that names a store goes
through: no form of password that libpq accepts survives it, and URLs without one come
out unchanged."""

from __future__ import annotations

import pytest

from workhorse import Workhorse
from workhorse.backends import open_backend, redact_url
from workhorse.errors import ConfigurationError

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        (f"postgresql://app:{SECRET}@db:5432/jobs", "postgresql://app:***@db:5432/jobs"),
        (f"postgresql://:{SECRET}@db/jobs", "postgresql://:***@db/jobs"),
        (
            f"postgresql://app@db/jobs?schema=x&password={SECRET}",
            "postgresql://app@db/jobs?schema=x&password=***",
        ),
        (f"postgresql://app@db/jobs?PASSWORD={SECRET}", "postgresql://app@db/jobs?PASSWORD=***"),
        (
            f"postgresql://app@db/jobs?sslpassword={SECRET}",
            "postgresql://app@db/jobs?sslpassword=***",
        ),
        (
            f"postgresql://app:{SECRET}@db/jobs?password={SECRET}",
            "postgresql://app:***@db/jobs?password=***",
        ),
    ],
)
def test_every_password_form_is_redacted(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
    assert SECRET not in repr(Workhorse(url))


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///jobs.db",
        "sqlite:////abs/path/jobs.db?timeout=3",
        "memory://",
        "postgresql://db/x",
    ],
)
def test_urls_without_a_password_are_unchanged(url: str) -> None:
    assert redact_url(url) == url


@pytest.mark.parametrize("url", [f"mysql://app:{SECRET}@db/jobs", f"app:{SECRET}@db/jobs"])
def test_errors_about_a_url_do_not_show_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        open_backend(url)
    assert SECRET not in str(raised.value)

"""The app that the secrets test runs in real worker and server processes
(``tests.security.apps:app``); its store is ``$WORKHORSE_URL``. Jobs of
``security.notify`` announce their end to the webhook at ``$WORKHORSE_TEST_WEBHOOK``,
signed with their tenant's secret."""

from __future__ import annotations

import os

from workhorse import Retry, Workhorse

WEBHOOK_ENV = "WORKHORSE_TEST_WEBHOOK"

app = Workhorse()


@app.task(name="security.notify", webhook=os.environ.get(WEBHOOK_ENV, "http://127.0.0.1:9/unused"))
def notify(value: int) -> int:
    """Succeed, and have the webhook told."""
    return value


@app.task(name="security.boom", retry=Retry(max_attempts=1))
def boom(message: str) -> None:
    """Fail, leaving an error and a traceback behind."""
    raise ValueError(message)

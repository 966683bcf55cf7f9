"""An app module that fails on import, as a misconfigured project does."""

from __future__ import annotations

raise RuntimeError("settings file 'jobs.toml' not found")

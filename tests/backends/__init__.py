"""The backend conformance suite: every store passes these tests unchanged."""

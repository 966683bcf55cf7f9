"""Tests of what only the SQLite store does: its file, locking, processes, change feed."""

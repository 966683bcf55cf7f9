-- workhorse schema, version 2 (SQLite): API keys for the HTTP API and the dashboard.
-- Only a SHA-256 of each token is stored; a key is bound to one tenant unless admin.

CREATE TABLE workhorse_api_keys (
    id          TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL UNIQUE,
    name        TEXT,
    tenant      TEXT,
    admin       INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    read_only   INTEGER NOT NULL DEFAULT 0 CHECK (read_only IN (0, 1)),
    created_at  REAL NOT NULL,
    revoked_at  REAL,
    CONSTRAINT tenant_or_admin CHECK (admin = 1 OR tenant IS NOT NULL)
);

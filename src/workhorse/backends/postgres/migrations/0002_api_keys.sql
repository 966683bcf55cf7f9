-- workhorse schema, version 2: API keys for the HTTP API and the dashboard.
-- Only a SHA-256 of each token is stored; a key is bound to one tenant unless admin.
-- {schema} is replaced by the quoted schema name when the migration is applied or printed.

CREATE TABLE {schema}.workhorse_api_keys (
    id         text PRIMARY KEY,
    key_hash   text NOT NULL UNIQUE,
    name       text,
    tenant     text,
    admin      boolean NOT NULL DEFAULT false,
    read_only  boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CONSTRAINT workhorse_api_keys_tenant_or_admin CHECK (admin OR tenant IS NOT NULL)
);

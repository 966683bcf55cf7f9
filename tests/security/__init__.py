"""Security properties that span the library, the CLI and the HTTP API."""

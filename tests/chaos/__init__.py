"""Fault injection with real worker processes: kills, stops, poison pills, dropped
database connections and a busy SQLite file, every effect counted in a ledger."""

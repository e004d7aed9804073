"""The ledger: what renewd decided and did, in a real database (SQLite by default)."""

"""The ledger: what renewd decided and did, in a real database (SQLite by default), and its lock.
May import config and the core; it implements the history the core asks for."""

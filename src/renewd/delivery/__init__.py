"""Delivery: what a message says (variables, templates) and the senders that carry it.
May import policy, config and the core; it knows nothing of plans, the ledger or runs."""

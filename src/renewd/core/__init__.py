"""The values everything else passes around: mailboxes, decisions, facts, history; pure.
Imports nothing of renewd; no files, clocks, databases or network (an import-linter contract)."""

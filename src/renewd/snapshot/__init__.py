"""Reading snapshots: CSV and JSON Lines rows streamed, validated, repeated ids and accounts that
disagree found. May import config and the core; reads the snapshot, spills to temporary files."""

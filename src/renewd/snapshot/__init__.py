"""Reading snapshots: CSV and JSON Lines rows streamed, validated, duplicates found.
May import config and the core; it reads the snapshot file and spills to temporary files."""

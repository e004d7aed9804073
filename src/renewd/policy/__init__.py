"""Renewal policy: YAML files, validated with file:line errors, compiled to durable_rules.
May import config (its YAML reader) and the core; it reads its own files and nothing else."""

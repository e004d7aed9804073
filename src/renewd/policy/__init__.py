"""Renewal policy: YAML files, validated with file:line errors, compiled to durable_rules."""

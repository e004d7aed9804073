"""The operator's settings: the config model, reading YAML with lines, plugin settings and secrets.
May import the core only; every stage above it reads the Config it builds."""

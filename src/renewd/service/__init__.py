"""The daemon: the daily schedule, reloads, signals, systemd, health, metrics and logs.
May import everything but the command line, which sits on top of it."""

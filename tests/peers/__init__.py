"""Real peers on loopback for the integration tests."""

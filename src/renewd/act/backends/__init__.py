"""Billing (charging the renewal fee) and provisioning (deleting a mailbox) backends."""

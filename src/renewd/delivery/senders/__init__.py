"""Senders deliver one message on one channel; found through the `renewd.senders` entry points."""

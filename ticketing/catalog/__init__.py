"""Organisers, events and ticket types; the public event pages."""

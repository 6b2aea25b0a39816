"""Signed QR tickets: the payload, its verification, its rendering, the published keys."""

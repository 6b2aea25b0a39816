"""Errors of the vault's public routes. Messages never say whether an email is known."""

from __future__ import annotations

from ticketing.errors import N_, GuichetError, Unauthorized


class InvalidLink(Unauthorized):
    code = "invalid_token"
    title = N_("Invalid link")


class LinkExpired(Unauthorized):
    code = "token_expired"
    title = N_("Link expired")


class LinkUsed(GuichetError):
    status = 410
    code = "token_used"
    title = N_("Link already used")

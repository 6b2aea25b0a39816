"""What an event's ``stream_url`` may be: checked before it is stored, and again before
its origin goes into the watch page's Content-Security-Policy.

The URL is where the player fetches the stream, with ``{credential}`` where each screen's
credential goes: a whole path segment (``/hls/{credential}/<stream>/index.m3u8``, as the
gate and nginx's ``secure_link`` read it) or a whole query value (``?cred={credential}``,
as MediaMTX passes it on). Its origin is written into a header, so the host must be a
host and nothing else: a character such as ``;`` or a space would start a new policy
directive.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from flask_babel import gettext as _

PLACEHOLDER = "{credential}"
MAX_LENGTH = 500

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_PORT = re.compile(r"[0-9]{1,5}")
# RFC 3986 path and query characters (unreserved, percent-encoded, sub-delims, ":", "@",
# "/", "?"), with the placeholder's braces allowed only where the placeholder stands.
_PATH_OR_QUERY = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")


def _is_host(host: str) -> bool:
    """A DNS name (ASCII; internationalised names in their xn-- form), or an IP address
    (IPv6 in brackets)."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            return False
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _netloc_problem(netloc: str) -> str | None:
    if "@" in netloc:
        return _("The stream address must not hold a user name or password.")
    host, colon, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
    if not colon:
        host, port = netloc, ""
    elif not port:
        return _("Give a port number after ':' in the stream address, from 1 to 65535.")
    if port and (not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535):
        return _("Give a port number after ':' in the stream address, from 1 to 65535.")
    if not _is_host(host):
        return _("The host of the stream address must be a domain name or an IP address.")
    return None


def _placeholder_problem(path: str, query: str) -> str | None:
    in_path = path.split("/").count(PLACEHOLDER)
    in_query = [value for _name, _sep, value in (pair.partition("=") for pair in query.split("&"))].count(PLACEHOLDER)
    if in_path + in_query != 1 or (path + query).count(PLACEHOLDER) != 1:
        return _(
            "Put {credential} once in the stream address: as a whole path segment "
            "(/hls/{credential}/stream/index.m3u8) or as a whole query value (?cred={credential})."
        )
    return None


def stream_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an event's stream URL (a message for the organiser), or None."""
    if len(url) > MAX_LENGTH:
        return _("The stream address is too long.")
    if not url.isascii() or not url.isprintable() or " " in url:
        return _("The stream address holds a character that is not allowed in a URL; encode it with %.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return _("The host or port of the stream address is not valid.")
    if parts.scheme not in ("http", "https") or not url.startswith(parts.scheme + "://"):
        return _("The stream address must start with https:// (or http://).")
    if parts.fragment or "#" in url:
        return _("The stream address must not have a fragment (#...).")
    problem = _netloc_problem(parts.netloc)
    if problem:
        return problem
    path, query = parts.path, parts.query
    bare = (path + "?" + query).replace(PLACEHOLDER, "")
    if not _PATH_OR_QUERY.fullmatch(bare):
        return _("The stream address holds a character that is not allowed in a URL; encode it with %.")
    return _placeholder_problem(path, query)


def stream_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a valid stream URL, for the watch page's policy; None for
    anything else, including a row stored before these checks existed."""
    if not url or stream_url_problem(url) is not None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"

"""Web origins (``scheme://host[:port]``): read them from headers and settings, compare them."""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str, *, bare: bool = False) -> str | None:
    """Return the origin of a URL in one spelling (lower case, no default port), or None.

    ``bare`` accepts only an origin itself, as an ``Origin`` header or a setting holds it: no
    path, query or user name. The opaque origin ``null`` is no origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a malformed port or IPv6 address
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if bare and (parts.path not in ("", "/") or parts.query or parts.fragment or parts.username):
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"

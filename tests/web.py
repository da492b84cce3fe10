"""Helpers to drive the app like a browser: forms with their CSRF token, sign-in with TOTP."""

from __future__ import annotations

import re

import pyotp

from tests.factories import PASSWORD

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
_SECRET = re.compile(r'id="totp-secret"[^>]*>([A-Z2-7]+)<')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def post_form(client, path: str, data: dict[str, str], *, page: str | None = None):  # type: ignore[no-untyped-def]
    """GET the form page for its token, then POST the form (like a browser)."""
    html = client.get(page or path).get_data(as_text=True)
    return client.post(path, data={**data, "csrf_token": csrf_from(html)})


def sign_in_and_enrol(client, username: str, password: str = PASSWORD) -> str:  # type: ignore[no-untyped-def]
    """Sign in for the first time, enrol TOTP, and return the secret."""
    response = post_form(client, "/auth/login", {"username": username, "password": password})
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/mfa/enrol")
    html = client.get("/auth/mfa/enrol").get_data(as_text=True)
    secret = _SECRET.search(html).group(1)  # type: ignore[union-attr]
    response = client.post("/auth/mfa/enrol", data={"code": pyotp.TOTP(secret).now(),
                                                    "csrf_token": csrf_from(html)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return secret


def dash_headers(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Return the header Dash's front end sends: the CSRF cookie's value as X-CSRFToken."""
    cookie = client.get_cookie("_csrf_token")
    assert cookie is not None, "no CSRF cookie was set"
    return {"X-CSRFToken": cookie.value}

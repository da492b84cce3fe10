from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select

from models import AuditLog
from services import database
from tests.conftest import make_settings, totp_now
from tests.factories import PASSWORD, make_user
from tests.web import csrf_from, post_form, sign_in_and_enrol


def _user(session, name):
    make_user(session, username=name)
    session.commit()


def test_first_sign_in_enrols_totp_then_lands_on_the_overview(client, session):
    _user(session, "alice")
    sign_in_and_enrol(client, "alice")
    codes_page = client.get("/auth/mfa/recovery-codes").get_data(as_text=True)
    assert codes_page.count("<li>") == 10
    assert client.get("/_dash-layout").status_code == 200


def test_later_sign_in_asks_for_the_current_code(client, session):
    _user(session, "bob")
    secret = sign_in_and_enrol(client, "bob")
    post_form(client, "/auth/logout", {})
    response = post_form(client, "/auth/login", {"username": "bob", "password": PASSWORD})
    assert response.headers["Location"].endswith("/auth/mfa/verify")
    assert client.get("/_dash-layout").status_code == 401  # password alone is not a session
    bad = post_form(client, "/auth/mfa/verify", {"code": "123456"})
    assert bad.status_code == 401 and "not valid" in bad.get_data(as_text=True)
    # Enrolment used the current step; the next step's code is within the accepted window.
    ok = post_form(client, "/auth/mfa/verify", {"code": totp_now(secret, offset_steps=1)})
    assert ok.status_code == 302 and client.get("/_dash-layout").status_code == 200


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(client, session):
    _user(session, "carol")
    html = client.get("/auth/login?next=/jobs").get_data(as_text=True)
    client.post("/auth/login?next=/jobs", data={"username": "carol", "password": PASSWORD,
                                                "csrf_token": csrf_from(html)})
    page = client.get("/auth/mfa/enrol").get_data(as_text=True)
    secret = page.split('id="totp-secret" class="user-select-all">')[1].split("<")[0]
    client.post("/auth/mfa/enrol", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_from(page)})
    codes = client.get("/auth/mfa/recovery-codes").get_data(as_text=True)
    assert 'href="/jobs"' in codes


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_open_redirect_after_sign_in_is_refused(client, session, target):
    _user(session, "dave")
    from dashapp.auth import _safe_next

    assert _safe_next(target) == "/"


def test_wrong_password_shows_one_message_and_is_audited(client, session):
    _user(session, "erin")
    response = post_form(client, "/auth/login", {"username": "erin", "password": "wrong password"})
    assert response.status_code == 401
    assert "Invalid username or password." in response.get_data(as_text=True)
    with database.session_scope() as s:
        actions = [(a.action, a.outcome) for a in s.scalars(select(AuditLog).order_by(AuditLog.seq))]
    assert ("auth.password", "failure") in actions


def test_login_rate_limit_answers_429(db_url, tmp_path):
    from dashapp import create_app
    from dashapp.extensions import limiter

    app = create_app(make_settings(db_url, tmp_path, RATE_LIMIT_LOGIN="3/m"))
    limiter.reset()  # counters live in the process: start from zero
    client = app.test_client()
    html = client.get("/auth/login").get_data(as_text=True)
    statuses = [client.post("/auth/login", data={"username": "x", "password": "y",
                                                 "csrf_token": csrf_from(html)}).status_code
                for _ in range(4)]
    assert statuses[-1] == 429
    refused = client.post("/auth/login", data={"csrf_token": csrf_from(html)})
    assert "Too many attempts" in refused.get_data(as_text=True)


def test_mfa_cannot_be_skipped_by_going_straight_to_the_dashboard(client, session):
    _user(session, "frank")
    post_form(client, "/auth/login", {"username": "frank", "password": PASSWORD})
    assert client.get("/").status_code == 302
    assert client.get("/_dash-layout").status_code == 401


def test_enrol_page_without_password_step_sends_to_sign_in(client):
    response = client.get("/auth/mfa/enrol")
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")


def _alert(html: str) -> str:
    match = re.search(r'<div class="alert[^"]*" role="alert">([^<]*)</div>', html)
    return match.group(1) if match else ""


def _enrolled_then_at_the_second_step(client, session, name):
    """Enrol (keeping the recovery codes shown), sign out, and sign in again up to the code."""
    _user(session, name)
    sign_in_and_enrol(client, name)
    page = client.get("/auth/mfa/recovery-codes").get_data(as_text=True)
    codes = re.findall(r"<li>([^<]+)</li>", page)
    post_form(client, "/auth/logout", {})
    response = post_form(client, "/auth/login", {"username": name, "password": PASSWORD})
    assert response.headers["Location"].endswith("/auth/mfa/verify")
    return codes


@pytest.mark.parametrize("retype", [
    lambda code: code,
    lambda code: code.upper(),
    lambda code: code.replace("-", ""),
    lambda code: " ".join(code.replace("-", "")[i:i + 5] for i in range(0, 20, 5)),
], ids=["as-shown", "capitals", "without-dash", "in-groups"])
def test_recovery_code_signs_in_as_shown_or_retyped(client, session, retype):
    codes = _enrolled_then_at_the_second_step(client, session, "rhea")
    assert len(codes) == 10
    response = post_form(client, "/auth/mfa/verify", {"code": retype(codes[0])})
    assert response.status_code == 302, _alert(response.get_data(as_text=True))
    assert client.get("/_dash-layout").status_code == 200


@pytest.mark.parametrize("path, code", [
    ("/auth/mfa/verify", "12"), ("/auth/mfa/verify", "9" * 80), ("/auth/mfa/verify", ""),
    ("/auth/mfa/enrol", "12"), ("/auth/mfa/enrol", "9" * 80),
])
def test_a_rejected_code_always_says_why(client, session, path, code):
    _user(session, "sven")
    if path.endswith("verify"):
        sign_in_and_enrol(client, "sven")
        post_form(client, "/auth/logout", {})
    post_form(client, "/auth/login", {"username": "sven", "password": PASSWORD})
    response = post_form(client, path, {"code": code})
    assert response.status_code in (400, 401)
    assert "code" in _alert(response.get_data(as_text=True)).lower()


def _session_cookie(app, client) -> str:
    """What the session cookie holds, decoded as anyone who has the cookie can (it is only signed)."""
    value = client.get_cookie("finops_session").value
    return repr(app.session_interface.get_signing_serializer(app).loads(value))


def test_totp_secret_and_recovery_codes_never_travel_in_the_session_cookie(app, client, session):
    _user(session, "tess")
    post_form(client, "/auth/login", {"username": "tess", "password": PASSWORD})
    page = client.get("/auth/mfa/enrol").get_data(as_text=True)
    secret = page.split('id="totp-secret" class="user-select-all">')[1].split("<")[0]
    cookies = [_session_cookie(app, client)]
    wrong = client.post("/auth/mfa/enrol", data={"code": "000000", "csrf_token": csrf_from(page)})
    assert wrong.status_code == 400 and secret in wrong.get_data(as_text=True)  # the same QR code again
    cookies.append(_session_cookie(app, client))
    done = client.post("/auth/mfa/enrol", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_from(page)})
    assert done.status_code == 302
    cookies.append(_session_cookie(app, client))
    codes = re.findall(r"<li>([^<]+)</li>", client.get("/auth/mfa/recovery-codes").get_data(as_text=True))
    cookies.append(_session_cookie(app, client))
    assert len(codes) == 10
    for cookie in cookies:
        assert secret not in cookie
        assert not [code for code in codes if code in cookie]
    assert client.get("/auth/mfa/recovery-codes").status_code == 302  # shown once only


def test_thirty_wrong_codes_lock_the_account_so_the_right_one_no_longer_signs_in(client, session):
    _user(session, "ursa")
    secret = sign_in_and_enrol(client, "ursa")
    post_form(client, "/auth/logout", {})
    post_form(client, "/auth/login", {"username": "ursa", "password": PASSWORD})
    for _ in range(30):
        assert post_form(client, "/auth/mfa/verify", {"code": "000000"}).status_code == 401
    right = post_form(client, "/auth/mfa/verify", {"code": totp_now(secret, offset_steps=1)})
    assert right.status_code == 401 and "locked" in _alert(right.get_data(as_text=True))
    assert client.get("/_dash-layout").status_code == 401


def test_a_locked_account_answers_exactly_like_an_unknown_one(client, session):
    _user(session, "vera")

    def answer_after_five_failures(name):
        for _ in range(5):
            post_form(client, "/auth/login", {"username": name, "password": "wrong password"})
        response = post_form(client, "/auth/login", {"username": name, "password": PASSWORD})
        return response.status_code, _alert(response.get_data(as_text=True))

    locked = answer_after_five_failures("vera")
    assert locked == answer_after_five_failures("nobody-at-all")
    assert locked[0] == 401
    with database.session_scope() as s:
        actions = [(a.action, a.outcome) for a in s.scalars(select(AuditLog).order_by(AuditLog.seq))]
    assert ("auth.lockout", "failure") in actions

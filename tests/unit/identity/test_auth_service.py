from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlalchemy import select

from models import AuditLog, LoginAttempt, MFADevice
from models.base import utcnow
from services import database
from services.errors import AuthenticationFailed, Conflict, InvalidInput
from services.identity import auth
from tests.factories import PASSWORD, enrol_totp, make_user

POLICY = auth.LoginPolicy(max_failures=3, window=dt.timedelta(minutes=15))


def _login(session, username, password, **kw):
    return auth.authenticate_password(session, username=username, password=password,
                                      ip_address="192.0.2.1", user_agent="pytest", policy=POLICY, **kw)


def test_correct_password_signs_in_case_insensitively(session):
    make_user(session, username="Alice")
    assert _login(session, "alice", PASSWORD).username == "Alice"


def test_password_is_stored_only_as_argon2_hash(session):
    user = make_user(session)
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


@pytest.mark.parametrize("username, password", [("alice", "wrong password!"), ("nobody", PASSWORD)])
def test_wrong_user_or_password_gives_the_same_answer(session, username, password):
    make_user(session, username="alice")
    with pytest.raises(AuthenticationFailed, match="Invalid username or password"):
        _login(session, username, password)


def test_locked_account_rejects_correct_password(db_url):
    with database.session_scope() as s:
        make_user(s, username="bob")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed), database.session_scope(commit_on=(AuthenticationFailed,)) as s:
            _login(s, "bob", "wrong password!")
    with pytest.raises(AuthenticationFailed, match="locked"), database.session_scope() as s:
        _login(s, "bob", PASSWORD)


def test_lock_expires_after_the_window(db_url):
    with database.session_scope() as s:
        make_user(s, username="carol")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed), database.session_scope(commit_on=(AuthenticationFailed,)) as s:
            _login(s, "carol", "wrong password!")
    later = utcnow() + dt.timedelta(minutes=16)
    with database.session_scope() as s:
        assert _login(s, "carol", PASSWORD, now=later).username == "carol"


def test_every_attempt_is_recorded(db_url):
    with database.session_scope() as s:
        make_user(s, username="dave")
        _login(s, "dave", PASSWORD)
    with pytest.raises(AuthenticationFailed), database.session_scope(commit_on=(AuthenticationFailed,)) as s:
        _login(s, "dave", "nope nope nope")
    with database.session_scope() as s:
        outcomes = [a.succeeded for a in s.scalars(select(LoginAttempt).order_by(LoginAttempt.id))]
    assert outcomes == [True, False]


def test_duplicate_username_is_a_conflict(session):
    make_user(session, username="erin")
    with pytest.raises(Conflict):
        make_user(session, username="ERIN")


@pytest.mark.parametrize("values, field", [
    ({"username": "x", "password": PASSWORD}, "username"),
    ({"username": "frank", "password": "short"}, "password"),
    ({"username": "frank", "password": PASSWORD, "roles": ["superuser"]}, "roles"),
    ({"username": "has space", "password": PASSWORD}, "username"),
])
def test_invalid_new_user_is_refused_naming_the_field(values, field):
    with pytest.raises(InvalidInput, match=f"^{field}"):
        auth.parse_new_user(**values)


def test_totp_secret_has_160_bits_and_is_encrypted_at_rest(session):
    user = make_user(session)
    enrolment = auth.begin_enrolment(session, user=user)
    device = session.scalar(select(MFADevice).where(MFADevice.user_id == user.id))
    assert len(enrolment.secret) == 32  # base32: 5 bits a character
    assert enrolment.secret not in device.secret_encrypted
    assert enrolment.qr_svg_data_uri.startswith("data:image/svg+xml")


def test_enrolment_refuses_a_wrong_code(session):
    user = make_user(session)
    auth.begin_enrolment(session, user=user)
    with pytest.raises(AuthenticationFailed, match="not valid"):
        auth.confirm_enrolment(session, user=user, code="000000", ip_address=None, user_agent=None)


def test_enrolment_returns_ten_single_use_recovery_codes(session):
    user = make_user(session)
    enrolment = auth.begin_enrolment(session, user=user)
    codes = auth.confirm_enrolment(session, user=user, code=pyotp.TOTP(enrolment.secret).now(),
                                   ip_address=None, user_agent=None)
    assert len(set(codes)) == 10
    auth.verify_second_factor(session, user=user, code=codes[0], ip_address=None, user_agent=None)
    with pytest.raises(AuthenticationFailed):
        auth.verify_second_factor(session, user=user, code=codes[0], ip_address=None, user_agent=None)


def test_current_code_is_accepted_once_and_its_replay_refused(session):
    user = make_user(session)
    secret = enrol_totp(session, user=user)
    code = pyotp.TOTP(secret).now()
    auth.verify_second_factor(session, user=user, code=code, ip_address=None, user_agent=None)
    with pytest.raises(AuthenticationFailed):
        auth.verify_second_factor(session, user=user, code=code, ip_address=None, user_agent=None)


def test_code_from_two_steps_ago_is_refused(session):
    user = make_user(session)
    secret = enrol_totp(session, user=user)
    old = pyotp.TOTP(secret).at(utcnow() - dt.timedelta(seconds=90))
    with pytest.raises(AuthenticationFailed):
        auth.verify_second_factor(session, user=user, code=old, ip_address=None, user_agent=None)


def test_logout_ends_the_server_side_session(session):
    user = make_user(session)
    sid = auth.start_session(session, user=user, ip_address=None, user_agent=None)
    timeout = dt.timedelta(hours=1)
    assert auth.load_session_user(session, sid=sid, user_id=user.id, timeout=timeout) is not None
    auth.end_session(session, sid=sid, actor=auth.actor_for(user))
    assert auth.load_session_user(session, sid=sid, user_id=user.id, timeout=timeout) is None


def test_idle_session_expires_after_the_timeout(session):
    user = make_user(session)
    sid = auth.start_session(session, user=user, ip_address=None, user_agent=None)
    later = utcnow() + dt.timedelta(hours=2)
    assert auth.load_session_user(session, sid=sid, user_id=user.id, timeout=dt.timedelta(hours=1),
                                  now=later) is None


def test_new_second_factor_ends_other_sessions(session):
    user = make_user(session)
    sid = auth.start_session(session, user=user, ip_address=None, user_agent=None)
    enrol_totp(session, user=user)
    assert auth.load_session_user(session, sid=sid, user_id=user.id, timeout=dt.timedelta(hours=1)) is None


def test_disabled_user_loses_live_session(session):
    user = make_user(session)
    sid = auth.start_session(session, user=user, ip_address=None, user_agent=None)
    user.is_active = False
    assert auth.load_session_user(session, sid=sid, user_id=user.id, timeout=dt.timedelta(hours=1)) is None


@pytest.mark.parametrize("retype", [str.upper, lambda c: c.replace("-", ""), lambda c: f" {c[:5]} {c[5:]} "])
def test_recovery_code_is_accepted_retyped_without_dash_in_capitals_or_spaced(session, retype):
    user = make_user(session)
    enrolment = auth.begin_enrolment(session, user=user)
    codes = auth.confirm_enrolment(session, user=user, code=pyotp.TOTP(enrolment.secret).now(),
                                   ip_address=None, user_agent=None)
    auth.verify_second_factor(session, user=user, code=retype(codes[1]), ip_address=None, user_agent=None)
    with pytest.raises(AuthenticationFailed):  # still once only, whatever its spelling
        auth.verify_second_factor(session, user=user, code=codes[1], ip_address=None, user_agent=None)


def test_recovery_codes_wait_encrypted_on_the_session_record_and_are_taken_once(session):
    from models import UserSession

    user = make_user(session)
    sid = auth.start_session(session, user=user, ip_address=None, user_agent=None)
    auth.hold_recovery_codes(session, sid=sid, codes=["0123456789-abcdefabcd"])
    assert "0123456789" not in session.get(UserSession, sid).recovery_codes_encrypted
    assert auth.take_recovery_codes(session, sid=sid) == ["0123456789-abcdefabcd"]
    assert auth.take_recovery_codes(session, sid=sid) == []


def _verify(session, user_id, code):
    user = auth.get_user(session, user_id=user_id)
    auth.verify_second_factor(session, user=user, code=code, ip_address="192.0.2.1", user_agent="pytest")


def test_wrong_second_factor_codes_lock_the_account_like_wrong_passwords(db_url):
    with database.session_scope() as s:
        user = make_user(s, username="mona")
        user_id, secret = user.id, enrol_totp(s, user=user)
    for _ in range(auth.LoginPolicy().max_failures):
        with pytest.raises(AuthenticationFailed), database.session_scope(commit_on=(AuthenticationFailed,)) as s:
            _verify(s, user_id, "000000")
    with pytest.raises(AuthenticationFailed, match="locked"), \
            database.session_scope(commit_on=(AuthenticationFailed,)) as s:
        _verify(s, user_id, pyotp.TOTP(secret).now())
    with database.session_scope() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.seq))]
    assert "auth.lockout" in actions


def test_a_code_another_request_used_meanwhile_is_refused(db_url):
    """The request that read the device first must not pass once another has used the step."""
    with database.session_scope() as s:
        user = make_user(s, username="nina")
        user_id, secret = user.id, enrol_totp(s, user=user)
    code = pyotp.TOTP(secret).now()
    with database.session_scope(commit_on=(AuthenticationFailed,)) as late:
        # Read (and held: the identity map keeps only what is referenced) before the other request.
        read_first = auth.confirmed_device(late, user=auth.get_user(late, user_id=user_id))
        with database.session_scope() as first:
            _verify(first, user_id, code)
        with pytest.raises(AuthenticationFailed):
            _verify(late, user_id, code)
        assert read_first is not None


def test_one_code_sent_twice_at_the_same_moment_passes_once(db_url):
    import threading

    with database.session_scope() as s:
        user = make_user(s, username="olga")
        user_id, secret = user.id, enrol_totp(s, user=user)
    code = pyotp.TOTP(secret).now()
    both_read = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def sign_in() -> None:
        try:
            with database.session_scope(commit_on=(AuthenticationFailed,)) as s:
                read_first = auth.confirmed_device(s, user=auth.get_user(s, user_id=user_id))
                both_read.wait()
                _verify(s, user_id, code)
                assert read_first is not None
            outcomes.append("passed")
        except AuthenticationFailed:
            outcomes.append("refused")

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["passed", "refused"]


def test_locked_and_unknown_accounts_get_the_same_answer(db_url):
    with database.session_scope() as s:
        make_user(s, username="pia")
    answers = {}
    for name in ("pia", "nobody-here"):
        for _ in range(POLICY.max_failures):
            with pytest.raises(AuthenticationFailed), database.session_scope(commit_on=(AuthenticationFailed,)) as s:
                _login(s, name, "wrong password!")
        with pytest.raises(AuthenticationFailed) as refused, \
                database.session_scope(commit_on=(AuthenticationFailed,)) as s:
            _login(s, name, PASSWORD)
        answers[name] = (type(refused.value), refused.value.message, refused.value.status_code)
    assert answers["pia"] == answers["nobody-here"]
    with database.session_scope() as s:
        reasons = [a.reason for a in s.scalars(select(LoginAttempt).where(LoginAttempt.username == "pia"))]
    assert reasons[-1] == "locked"  # the lockout itself still holds, and says so in the records

"""Local accounts: password hashing, lockout, TOTP second factor, server-side sessions."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import LoginAttempt, MFADevice, Role, User, UserSession
from models.base import utcnow
from services import audit, crypto
from services.errors import AuthenticationFailed, Conflict, InvalidInput
from services.identity.permissions import ROLES, Actor
from services.validation import parse

logger = logging.getLogger(__name__)

_hasher = PasswordHasher()
#: Verified against when the user does not exist, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
TOTP_ISSUER = "FinOps Dashboard"
TOTP_STEP_SECONDS = 30
RECOVERY_CODE_COUNT = 10
#: Hex characters on each side of a recovery code's dash (80 random bits in all).
RECOVERY_CODE_HALF_LENGTH = 10
#: The one answer to every refused password step (unknown, wrong, disabled or locked), so that
#: it never tells whether an account exists.
LOGIN_FAILED = ("Invalid username or password. After too many failed sign-ins an account is "
                "locked for a while: try again later or ask an administrator.")
CODE_FAILED = "That code is not valid. Enter the current 6-digit code from your authenticator."
#: Said only at the second step, to someone who has just given the right password.
LOCKED_AT_SECOND_STEP = ("This account is locked after too many failed sign-ins. Try again later "
                         "or ask an administrator to unlock it.")


class NewUser(BaseModel):
    """The writable fields of a new local account."""

    username: str = Field(min_length=3, max_length=150, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=12, max_length=256)
    email: str | None = Field(default=None, max_length=255)
    display_name: str = Field(default="", max_length=150)
    roles: list[str] = Field(default_factory=lambda: ["finance"])

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(unknown)}")
        return value


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return _hasher.hash(password)


def generate_password() -> str:
    """Return a random password of 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


def ensure_roles(session: Session) -> None:
    """Create the built-in roles that do not exist yet."""
    existing = set(session.scalars(select(Role.name)))
    for name, description in ROLES.items():
        if name not in existing:
            session.add(Role(name=name, description=description))
    session.flush()


def create_user(session: Session, *, actor: Actor, data: NewUser) -> User:
    """Create a local account with the given roles."""
    ensure_roles(session)
    if session.scalar(select(User.id).where(func.lower(User.username) == data.username.lower())):
        raise Conflict(f"A user named '{data.username}' already exists.")
    roles = list(session.scalars(select(Role).where(Role.name.in_(data.roles))))
    user = User(
        username=data.username,
        email=data.email,
        display_name=data.display_name or data.username,
        password_hash=hash_password(data.password),
        password_changed_at=utcnow(),
        roles=roles,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", object_type="user", object_id=user.id,
                 details={"username": user.username, "roles": sorted(data.roles)})
    return user


def parse_new_user(**values: object) -> NewUser:
    """Validate new-account input, turning pydantic errors into one readable InvalidInput."""
    return parse(NewUser, values)


def actor_for(user: User, *, ip_address: str | None = None, user_agent: str | None = None) -> Actor:
    """Return the Actor for a user."""
    return Actor(user_id=user.id, username=user.username,
                 roles=frozenset(r.name for r in user.roles),
                 ip_address=ip_address, user_agent=user_agent)


@dataclass(frozen=True)
class LoginPolicy:
    """Lockout rule: this many failures within the window lock the account for the window."""

    max_failures: int = 5
    window: dt.timedelta = dt.timedelta(minutes=15)


def _record_attempt(session: Session, *, username: str, user: User | None, ok: bool, stage: str,
                    reason: str, ip: str | None, agent: str | None) -> None:
    session.add(LoginAttempt(username=username[:150], user_id=user.id if user else None,
                             succeeded=ok, stage=stage, reason=reason, ip_address=ip,
                             user_agent=(agent or "")[:512]))
    actor = actor_for(user, ip_address=ip, user_agent=agent) if user else Actor(
        user_id=None, username=username[:150], ip_address=ip, user_agent=agent)
    audit.record(session, actor=actor, action=f"auth.{stage}",
                 object_type="user", object_id=user.id if user else "",
                 outcome="success" if ok else "failure", details={"reason": reason} if reason else {})


def authenticate_password(
    session: Session,
    *,
    username: str,
    password: str,
    ip_address: str | None,
    user_agent: str | None,
    policy: LoginPolicy = LoginPolicy(),  # noqa: B008 - frozen dataclass, safe as a default
    now: dt.datetime | None = None,
) -> User:
    """Check a username and password, counting failures towards a lockout."""
    now = now or utcnow()
    user = session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))

    def fail(reason: str) -> None:
        _record_attempt(session, username=username, user=user, ok=False, stage="password",
                        reason=reason, ip=ip_address, agent=user_agent)

    if user is None or user.password_hash is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        fail("unknown user")
        raise AuthenticationFailed(LOGIN_FAILED)
    if user.locked_until is not None and user.locked_until > now:
        with contextlib.suppress(VerificationError):  # the same time as an unknown user
            _hasher.verify(_DUMMY_HASH, password)
        fail("locked")
        raise AuthenticationFailed(LOGIN_FAILED)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        fail("bad password")
        _lock_if_needed(session, user=user, policy=policy, now=now)
        raise AuthenticationFailed(LOGIN_FAILED) from None
    if not user.is_active:
        fail("disabled")
        raise AuthenticationFailed(LOGIN_FAILED)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    _record_attempt(session, username=username, user=user, ok=True, stage="password", reason="",
                    ip=ip_address, agent=user_agent)
    return user


def _lock_if_needed(session: Session, *, user: User, policy: LoginPolicy, now: dt.datetime) -> None:
    since = now - policy.window
    if user.locked_until is not None and user.locked_until > since:
        since = user.locked_until
    failures = session.scalar(
        select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.user_id == user.id,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.created_at >= since,
        )
    ) or 0
    if failures >= policy.max_failures:
        user.locked_until = now + policy.window
        audit.record(session, actor=actor_for(user), action="auth.lockout", object_type="user",
                     object_id=user.id, outcome="failure", details={"failures": failures})


# --- TOTP -----------------------------------------------------------------------------------

def mfa_secret_context(device_user_id: int) -> str:
    return f"mfa_devices.secret:{device_user_id}"


def confirmed_device(session: Session, *, user: User) -> MFADevice | None:
    """Return the user's confirmed TOTP device, if any."""
    return session.scalar(
        select(MFADevice).where(MFADevice.user_id == user.id, MFADevice.confirmed_at.is_not(None))
    )


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows once: the secret, its URI and a QR code."""

    secret: str
    provisioning_uri: str
    qr_svg_data_uri: str


def begin_enrolment(session: Session, *, user: User) -> Enrolment:
    """Create (or replace) the user's pending TOTP device and return what to show."""
    for pending in session.scalars(
        select(MFADevice).where(MFADevice.user_id == user.id, MFADevice.confirmed_at.is_(None))
    ):
        session.delete(pending)
    secret = pyotp.random_base32()  # 32 base32 characters: 160 bits
    session.add(MFADevice(user_id=user.id, kind="totp",
                          secret_encrypted=crypto.keyring().encrypt(
                              secret, context=mfa_secret_context(user.id))))
    session.flush()
    return _enrolment(user, secret)


def pending_enrolment(session: Session, *, user: User) -> Enrolment | None:
    """Return what the enrolment page shows for the device waiting for its first code, if any."""
    device = _pending_device(session, user=user)
    if device is None:
        return None
    secret = crypto.keyring().decrypt(device.secret_encrypted, context=mfa_secret_context(user.id))
    return _enrolment(user, secret)


def _pending_device(session: Session, *, user: User) -> MFADevice | None:
    return session.scalar(
        select(MFADevice).where(MFADevice.user_id == user.id, MFADevice.confirmed_at.is_(None))
        .order_by(MFADevice.id.desc())
    )


def _enrolment(user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5)
    return Enrolment(secret=secret, provisioning_uri=uri, qr_svg_data_uri=qr)


def _match_step(secret: str, code: str, *, now: dt.datetime, after_step: int | None) -> int | None:
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if after_step is not None and step <= after_step:
            continue  # a code from a step already used is a replay
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def confirm_enrolment(
    session: Session, *, user: User, code: str, ip_address: str | None, user_agent: str | None,
    now: dt.datetime | None = None,
) -> list[str]:
    """Confirm the pending device with a code; return the one-time recovery codes."""
    now = now or utcnow()
    device = _pending_device(session, user=user)
    if device is None:
        raise InvalidInput("There is no enrolment in progress. Start again.")
    secret = crypto.keyring().decrypt(device.secret_encrypted, context=mfa_secret_context(user.id))
    step = _match_step(secret, code, now=now, after_step=None)
    if step is None:
        _record_attempt(session, username=user.username, user=user, ok=False, stage="mfa_enrol",
                        reason="bad code", ip=ip_address, agent=user_agent)
        raise AuthenticationFailed(CODE_FAILED)
    for old in session.scalars(
        select(MFADevice).where(MFADevice.user_id == user.id, MFADevice.id != device.id)
    ):
        session.delete(old)
    half = RECOVERY_CODE_HALF_LENGTH // 2  # bytes: two hex characters each
    codes = [f"{secrets.token_hex(half)}-{secrets.token_hex(half)}" for _ in range(RECOVERY_CODE_COUNT)]
    device.recovery_code_hashes = [_recovery_hash(c) for c in codes]
    device.confirmed_at = now
    device.last_used_step = step
    # A new second factor ends every other session of the user.
    revoke_all_sessions(session, user_id=user.id)
    _record_attempt(session, username=user.username, user=user, ok=True, stage="mfa_enrol",
                    reason="", ip=ip_address, agent=user_agent)
    return codes


def verify_second_factor(
    session: Session, *, user: User, code: str, ip_address: str | None, user_agent: str | None,
    policy: LoginPolicy = LoginPolicy(),  # noqa: B008 - frozen dataclass, safe as a default
    now: dt.datetime | None = None,
) -> None:
    """Accept a current TOTP code (never the same step twice) or an unused recovery code.

    Wrong codes count towards the account's lockout like wrong passwords; a locked account is
    refused whatever the code."""
    now = now or utcnow()
    device = confirmed_device(session, user=user)
    if device is None:
        raise InvalidInput("No authenticator is enrolled for this account.")

    def record(ok: bool, reason: str) -> None:
        _record_attempt(session, username=user.username, user=user, ok=ok, stage="mfa",
                        reason=reason, ip=ip_address, agent=user_agent)

    if user.locked_until is not None and user.locked_until > now:
        record(False, "locked")
        raise AuthenticationFailed(LOCKED_AT_SECOND_STEP)
    secret = crypto.keyring().decrypt(device.secret_encrypted, context=mfa_secret_context(user.id))
    step = _match_step(secret, code, now=now, after_step=device.last_used_step)
    if step is not None and _claim_step(session, device=device, step=step):
        record(True, "")
        return
    if step is None and _use_recovery_code(device, code):
        record(True, "recovery code")
        return
    record(False, "bad code" if step is None else "replayed code")
    _lock_if_needed(session, user=user, policy=policy, now=now)
    raise AuthenticationFailed(CODE_FAILED)


def _claim_step(session: Session, *, device: MFADevice, step: int) -> bool:
    """Mark a TOTP step used unless a request got there first; True when this one did.

    One conditional UPDATE: on PostgreSQL a concurrent request waits for the row lock and then
    finds the step taken; SQLite runs one writer at a time. Reading the step first and writing it
    later would let the same code pass twice."""
    claimed = session.execute(
        update(MFADevice)
        .where(MFADevice.id == device.id,
               or_(MFADevice.last_used_step.is_(None), MFADevice.last_used_step < step))
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
        return False
    set_committed_value(device, "last_used_step", step)
    return True


def _recovery_hash(code: str) -> str:
    # 80 random bits per code: a fast hash is enough, unlike for a chosen password.
    return hashlib.sha256(code.lower().encode()).hexdigest()


def _as_recovery_code(typed: str) -> str | None:
    """Return a typed recovery code in the shape it was issued (``hhhhhhhhhh-hhhhhhhhhh``), or None.

    People copy it with or without the dash, in capitals or in groups of a few characters."""
    compact = "".join(ch for ch in typed if not ch.isspace() and ch != "-").lower()
    half = RECOVERY_CODE_HALF_LENGTH
    if len(compact) != 2 * half or any(ch not in "0123456789abcdef" for ch in compact):
        return None
    return f"{compact[:half]}-{compact[half:]}"


def _use_recovery_code(device: MFADevice, typed: str) -> bool:
    code = _as_recovery_code(typed)
    if code is None:
        return False
    wanted = _recovery_hash(code)
    remaining = list(device.recovery_code_hashes)
    for stored in remaining:
        if hmac.compare_digest(stored, wanted):
            remaining.remove(stored)
            device.recovery_code_hashes = remaining
            return True
    return False


# --- sessions -------------------------------------------------------------------------------

def start_session(session: Session, *, user: User, ip_address: str | None,
                  user_agent: str | None) -> str:
    """Record a new signed-in session and return its id."""
    sid = secrets.token_urlsafe(32)
    session.add(UserSession(id=sid, user_id=user.id, ip_address=ip_address,
                            user_agent=(user_agent or "")[:512]))
    user.last_login_at = utcnow()
    audit.record(session, actor=actor_for(user, ip_address=ip_address, user_agent=user_agent),
                 action="auth.login", object_type="user", object_id=user.id)
    return sid


def load_session_user(session: Session, *, sid: str, user_id: int, timeout: dt.timedelta,
                      now: dt.datetime | None = None) -> User | None:
    """Return the user of a live session, or None when it was revoked, expired or disabled."""
    now = now or utcnow()
    record = session.get(UserSession, sid)
    if record is None or record.user_id != user_id or record.revoked_at is not None:
        return None
    if record.last_seen_at < now - timeout:
        record.revoked_at = now
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    if now - record.last_seen_at > dt.timedelta(seconds=60):
        record.last_seen_at = now  # idle timeout; written at most once a minute
    return user


def recovery_codes_context(sid: str) -> str:
    """Return the associated data that binds held recovery codes to their session."""
    return f"user_sessions.recovery_codes:{sid}"


def hold_recovery_codes(session: Session, *, sid: str, codes: list[str]) -> None:
    """Keep new recovery codes, encrypted, on the session record until they are shown once."""
    record = session.get(UserSession, sid)
    if record is None:
        raise InvalidInput("The session to show the recovery codes in has ended.")
    record.recovery_codes_encrypted = crypto.keyring().encrypt(json.dumps(codes),
                                                               context=recovery_codes_context(sid))


def take_recovery_codes(session: Session, *, sid: str) -> list[str]:
    """Return the recovery codes waiting on a session and forget them: they are shown once."""
    record = session.get(UserSession, sid)
    if record is None or record.recovery_codes_encrypted is None:
        return []
    sealed, record.recovery_codes_encrypted = record.recovery_codes_encrypted, None
    try:
        codes = json.loads(crypto.keyring().decrypt(sealed, context=recovery_codes_context(sid)))
    except InvalidInput:
        logger.warning("recovery codes waiting on session of user %s could not be decrypted; "
                       "they are dropped (the user can enrol again)", record.user_id)
        return []
    return [str(code) for code in codes]


def end_session(session: Session, *, sid: str, actor: Actor) -> None:
    """Revoke one session (logout)."""
    record = session.get(UserSession, sid)
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
        record.recovery_codes_encrypted = None
        audit.record(session, actor=actor, action="auth.logout", object_type="user",
                     object_id=record.user_id)


def revoke_all_sessions(session: Session, *, user_id: int) -> None:
    """Revoke every session of a user (disable, MFA change, password change)."""
    session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), recovery_codes_encrypted=None)
    )


def get_user(session: Session, *, user_id: int) -> User | None:
    """Return a user by id."""
    return session.get(User, user_id)


def count_users(session: Session) -> int:
    """Return how many accounts exist."""
    return session.scalar(select(func.count()).select_from(User)) or 0

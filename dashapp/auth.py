"""/auth/*: local sign-in, TOTP enrolment and verification, sign-out."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from callbacks.context import current_actor
from dashapp.extensions import limiter
from dashapp.security import SessionUser
from services import database
from services.errors import AuthenticationFailed, DomainError
from services.identity import auth

logger = logging.getLogger(__name__)
bp = Blueprint("auth", __name__, url_prefix="/auth")

PENDING_SECONDS = 300


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=150)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class CodeForm(FlaskForm):
    # A TOTP code has 6 digits; a recovery code 21 characters as shown, more when typed in groups.
    code = StringField("Code", validators=[DataRequired(), Length(min=6, max=64)])


class LogoutForm(FlaskForm):
    pass


def _client() -> tuple[str | None, str | None]:
    return request.remote_addr, (request.user_agent.string[:512] if request.user_agent else None)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never redirect to another host after sign-in."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _fresh_session() -> None:
    """Start an empty session, with a new CSRF token (not the one cached for this request)."""
    session.clear()
    g.pop("csrf_token", None)


def _login_limit() -> str:
    return str(current_app.config["RATE_LIMIT_LOGIN"])


def _lockout_policy() -> auth.LoginPolicy:
    return auth.LoginPolicy(max_failures=current_app.config["LOGIN_LOCKOUT_THRESHOLD"],
                            window=current_app.config["LOGIN_LOCKOUT_WINDOW"])


def _pending_user_id() -> int | None:
    pending = session.get("pending")
    if not pending or pending.get("until", 0) < time.time():
        session.pop("pending", None)
        return None
    return int(pending["user_id"])


def _complete_login(user_id: int, *, recovery_codes: list[str] | None = None) -> str | None:
    """Start the signed-in session; return where to go next, or None when the user may not.

    New recovery codes wait, encrypted, on the server-side session record until shown once."""
    ip, agent = _client()
    target = _safe_next(session.get("pending", {}).get("next"))
    _fresh_session()  # no fixation across the sign-in
    with database.session_scope() as db:
        user = auth.get_user(db, user_id=user_id)
        if user is None or not user.is_active:
            return None
        sid = auth.start_session(db, user=user, ip_address=ip, user_agent=agent)
        if recovery_codes:
            auth.hold_recovery_codes(db, sid=sid, codes=recovery_codes)
        web_user = SessionUser(id=user.id, username=user.username,
                               display_name=user.display_name or user.username,
                               roles=frozenset(r.name for r in user.roles), sid=sid)
    session["sid"] = sid
    session.permanent = True
    login_user(web_user)
    return target


def _finish(user_id: int) -> Response:
    target = _complete_login(user_id)
    if target is None:
        flash("This account cannot sign in.", "danger")
        return redirect(url_for("auth.login"))
    return redirect(target)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Response | str:
    """Check username and password, then send the user to enrol or verify a second factor."""
    if current_user.is_authenticated:
        return redirect("/")
    form = LoginForm()
    if form.validate_on_submit():
        ip, agent = _client()
        policy = _lockout_policy()
        try:
            with database.session_scope(commit_on=(AuthenticationFailed,)) as db:
                user = auth.authenticate_password(db, username=form.username.data or "",
                                                  password=form.password.data or "",
                                                  ip_address=ip, user_agent=agent, policy=policy)
                user_id, has_mfa = user.id, auth.confirmed_device(db, user=user) is not None
        except DomainError as exc:
            flash(exc.message, "danger")
            return render_template("login.html", form=form), 401
        next_target = request.args.get("next")
        _fresh_session()
        session["pending"] = {"user_id": user_id, "until": time.time() + PENDING_SECONDS,
                              "next": next_target}
        if not current_app.config["MFA_REQUIRED"] and not has_mfa:
            return _finish(user_id)
        return redirect(url_for("auth.verify" if has_mfa else "auth.enrol"))
    return render_template("login.html", form=form)


@bp.route("/mfa/enrol", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def enrol() -> Response | str:
    """Show a new TOTP secret and QR code once; confirm it with a code."""
    user_id = _pending_user_id()
    if user_id is None:
        flash("Sign in first.", "warning")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    ip, agent = _client()
    if form.validate_on_submit():
        try:
            with database.session_scope(commit_on=(AuthenticationFailed,)) as db:
                user = auth.get_user(db, user_id=user_id)
                if user is None:
                    return redirect(url_for("auth.login"))
                codes = auth.confirm_enrolment(db, user=user, code=form.code.data or "",
                                               ip_address=ip, user_agent=agent)
        except DomainError as exc:
            flash(exc.message, "danger")
            return _enrol_again(user_id, form)
        target = _complete_login(user_id, recovery_codes=codes)
        if target is None:
            flash("This account cannot sign in.", "danger")
            return redirect(url_for("auth.login"))
        session["after_codes"] = target
        return redirect(url_for("auth.recovery_codes"))
    if form.is_submitted():
        flash(auth.CODE_FAILED, "danger")
        return _enrol_again(user_id, form)
    with database.session_scope() as db:
        user = auth.get_user(db, user_id=user_id)
        if user is None:
            return redirect(url_for("auth.login"))
        if auth.confirmed_device(db, user=user) is not None:
            return redirect(url_for("auth.verify"))
        enrolment = auth.begin_enrolment(db, user=user)
    # The secret is shown on this page only, never put in the session cookie (signed, not
    # encrypted): a failed confirmation reads it again from the pending device.
    return render_template("enrol.html", form=form, enrolment=_enrolment_view(enrolment))


def _enrolment_view(enrolment: auth.Enrolment | None) -> dict[str, str] | None:
    return {"secret": enrolment.secret, "qr": enrolment.qr_svg_data_uri} if enrolment else None


def _enrol_again(user_id: int, form: CodeForm) -> tuple[str, int]:
    """Show the same QR code again after a refused confirmation."""
    with database.session_scope() as db:
        user = auth.get_user(db, user_id=user_id)
        enrolment = auth.pending_enrolment(db, user=user) if user is not None else None
    return render_template("enrol.html", form=form, enrolment=_enrolment_view(enrolment)), 400


@bp.route("/mfa/recovery-codes")
def recovery_codes() -> Response | str:
    """Show the recovery codes once, right after enrolment."""
    target = _safe_next(session.pop("after_codes", None))
    if not current_user.is_authenticated:
        return redirect(target)
    with database.session_scope() as db:
        codes = auth.take_recovery_codes(db, sid=current_user.sid)
    if not codes:
        return redirect(target)
    return render_template("recovery_codes.html", codes=codes, target=target)


@bp.route("/mfa/verify", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def verify() -> Response | str:
    """Ask for the current TOTP code (or a recovery code)."""
    user_id = _pending_user_id()
    if user_id is None:
        flash("Sign in first.", "warning")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        ip, agent = _client()
        try:
            with database.session_scope(commit_on=(AuthenticationFailed,)) as db:
                user = auth.get_user(db, user_id=user_id)
                if user is None:
                    return redirect(url_for("auth.login"))
                auth.verify_second_factor(db, user=user, code=form.code.data or "",
                                          ip_address=ip, user_agent=agent, policy=_lockout_policy())
        except DomainError as exc:
            flash(exc.message, "danger")
            return render_template("verify.html", form=form), 401
        return _finish(user_id)
    if form.is_submitted():
        flash(auth.CODE_FAILED, "danger")
        return render_template("verify.html", form=form), 400
    return render_template("verify.html", form=form)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response | str:
    """Confirm on GET, end the server-side session on POST."""
    form = LogoutForm()
    if request.method == "POST" and form.validate_on_submit():
        if current_user.is_authenticated:
            with database.session_scope() as db:
                auth.end_session(db, sid=current_user.sid, actor=current_actor())
        logout_user()
        _fresh_session()
        flash("You have signed out.", "info")
        return redirect(url_for("auth.login"))
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return render_template("logout.html", form=form)

"""AWS profiles: credentials encrypted at rest, never shown again; connectivity tests; key rotation."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AwsProfile, MFADevice, ProfileGrant
from models.base import utcnow
from services import audit, crypto
from services.aws.credentials import SECRET_ACCESS_KEY_PATTERN, SESSION_TOKEN_PATTERN, ProfileCredentials
from services.aws.regions import AWS_REGIONS
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.identity.auth import mfa_secret_context
from services.identity.permissions import Actor, require_role
from services.validation import is_storable_id

logger = logging.getLogger(__name__)

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ACCESS_KEY = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{12,124}$")
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_endpoint_url: str | None = None


def configure(*, endpoint_url: str | None) -> None:
    """Send AWS calls to this endpoint instead of AWS (an operator setting: tests, private endpoints)."""
    global _endpoint_url
    _endpoint_url = endpoint_url


def endpoint_url() -> str | None:
    """Return the configured AWS endpoint (None: AWS itself)."""
    return _endpoint_url


_ENCRYPTED = ("access_key_id_encrypted", "secret_access_key_encrypted", "session_token_encrypted",
              "external_id_encrypted")


def _regions(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - AWS_REGIONS)
    if unknown:
        raise ValueError(f"unknown region(s): {', '.join(unknown)}")
    return sorted(set(value))


class ProfileCreate(BaseModel):
    """The writable fields of a new profile (the allow-list of what a request may set)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(pattern=_NAME)
    description: str = Field(default="", max_length=255)
    auth_type: Literal["keys", "assume_role"] = "keys"
    access_key_id: str | None = Field(default=None, max_length=128)
    #: The runner's own rule (services.aws.credentials): a saved secret can always be written. A
    #: token is also capped at 4096 characters, as its encrypted column holds 8192.
    secret_access_key: str | None = Field(default=None, pattern=SECRET_ACCESS_KEY_PATTERN)
    session_token: str | None = Field(default=None, max_length=4096, pattern=SESSION_TOKEN_PATTERN)
    role_arn: str | None = Field(default=None, max_length=2048)
    external_id: str | None = Field(default=None, min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")
    source_profile_id: int | None = None
    default_regions: list[str] = Field(default_factory=lambda: ["us-east-1"], min_length=1, max_length=40)
    is_payer: bool = False
    payer_profile_id: int | None = None

    _check_regions = field_validator("default_regions")(_regions)

    @field_validator("access_key_id")
    @classmethod
    def _key_shape(cls, value: str | None) -> str | None:
        if value is not None and not _ACCESS_KEY.match(value):
            raise ValueError("an access key id starts with AKIA or ASIA followed by capital letters and digits")
        return value

    @field_validator("role_arn")
    @classmethod
    def _arn_shape(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.match(value):
            raise ValueError("a role ARN looks like arn:aws:iam::123456789012:role/Name")
        return value

    @model_validator(mode="after")
    def _complete(self) -> ProfileCreate:
        if self.auth_type == "keys" and not (self.access_key_id and self.secret_access_key):
            raise ValueError("a keys profile needs access_key_id and secret_access_key")
        if self.auth_type == "assume_role" and not (self.role_arn and self.source_profile_id):
            raise ValueError("an assume_role profile needs role_arn and source_profile_id")
        return self


class ProfileUpdate(BaseModel):
    """Fields a change may set; secrets are replaced only when given, never returned."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str | None = Field(default=None, max_length=255)
    access_key_id: str | None = Field(default=None, max_length=128)
    #: The runner's own rule (services.aws.credentials): a saved secret can always be written. A
    #: token is also capped at 4096 characters, as its encrypted column holds 8192.
    secret_access_key: str | None = Field(default=None, pattern=SECRET_ACCESS_KEY_PATTERN)
    session_token: str | None = Field(default=None, max_length=4096, pattern=SESSION_TOKEN_PATTERN)
    role_arn: str | None = Field(default=None, max_length=2048)
    external_id: str | None = Field(default=None, min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")
    default_regions: list[str] | None = Field(default=None, min_length=1, max_length=40)
    is_payer: bool | None = None
    payer_profile_id: int | None = None
    is_active: bool | None = None

    _check_regions = field_validator("default_regions")(lambda v: None if v is None else _regions(v))
    _key_shape = field_validator("access_key_id")(ProfileCreate._key_shape.__func__)  # type: ignore[attr-defined]
    _arn_shape = field_validator("role_arn")(ProfileCreate._arn_shape.__func__)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _not_null(self) -> ProfileUpdate:
        # Leaving a field out keeps it; null would clear it, which only the optional links and
        # secrets allow (a profile always has a description, regions and its flags, and keys).
        cleared = sorted(f for f in self.model_fields_set & _KEPT_FIELDS if getattr(self, f) is None)
        if cleared:
            raise ValueError(f"{', '.join(cleared)} may not be null: leave the field out to keep its value")
        return self


_KEPT_FIELDS = frozenset({"description", "access_key_id", "secret_access_key", "default_regions", "is_payer",
                          "is_active"})


class ProfileRead(BaseModel):
    """What anyone is shown of a profile: never a secret, only a hint of the key id."""

    id: int
    name: str
    description: str
    auth_type: str
    account_id: str | None
    access_key_hint: str | None
    role_arn: str | None
    has_external_id: bool
    source_profile_id: int | None
    default_regions: list[str]
    is_payer: bool
    payer_profile_id: int | None
    is_active: bool
    last_test_ok: bool | None


@dataclass(frozen=True)
class ConnectionTest:
    is_ok: bool
    message: str
    account_id: str | None = None
    arn: str | None = None


def _context(column: str, name: str) -> str:
    return f"aws_profiles.{column}:{name}"


def _seal(profile: AwsProfile, column: str, value: str | None) -> None:
    sealed = None if value is None else crypto.keyring().encrypt(value, context=_context(column, profile.name))
    room = getattr(AwsProfile.__table__.c[column].type, "length", None)
    if sealed is not None and room is not None and len(sealed) > room:
        # Checked here, not left to the database: PostgreSQL would refuse the row with a 500.
        raise InvalidInput(f"{column.removesuffix('_encrypted')}: too long to store once encrypted")
    setattr(profile, column, sealed)


def _open(profile: AwsProfile, column: str) -> str | None:
    token = getattr(profile, column)
    return None if token is None else crypto.keyring().decrypt(token, context=_context(column, profile.name))


def _read(profile: AwsProfile) -> ProfileRead:
    key = _open(profile, "access_key_id_encrypted")
    return ProfileRead(
        id=profile.id, name=profile.name, description=profile.description, auth_type=profile.auth_type,
        account_id=profile.account_id, access_key_hint=f"{key[:4]}…{key[-4:]}" if key else None,
        role_arn=profile.role_arn, has_external_id=profile.external_id_encrypted is not None,
        source_profile_id=profile.source_profile_id, default_regions=list(profile.default_regions),
        is_payer=profile.is_payer, payer_profile_id=profile.payer_profile_id, is_active=profile.is_active,
        last_test_ok=profile.last_test_ok,
    )


def _get(session: Session, *, actor: Actor, profile_id: int) -> AwsProfile:
    profile = session.get(AwsProfile, profile_id) if is_storable_id(profile_id) else None
    if profile is None or not _may_see(session, actor=actor, profile_id=profile_id):
        raise NotFound(f"Profile {profile_id} was not found.")
    return profile


def _may_see(session: Session, *, actor: Actor, profile_id: int) -> bool:
    if actor.has_role("admin"):
        return True
    return session.scalar(select(ProfileGrant.id).where(
        ProfileGrant.user_id == actor.user_id, ProfileGrant.profile_id == profile_id)) is not None


def list_profiles(session: Session, *, actor: Actor) -> list[ProfileRead]:
    """Return the profiles the actor may see (admins: all; others: those granted)."""
    query = select(AwsProfile).order_by(AwsProfile.name)
    if not actor.has_role("admin"):
        query = query.where(AwsProfile.id.in_(
            select(ProfileGrant.profile_id).where(ProfileGrant.user_id == actor.user_id)))
    return [_read(p) for p in session.scalars(query)]


def get_profile(session: Session, *, actor: Actor, profile_id: int) -> ProfileRead:
    """Return one profile the actor may see."""
    return _read(_get(session, actor=actor, profile_id=profile_id))


def _check_links(session: Session, *, actor: Actor, source_id: int | None, payer_id: int | None) -> None:
    for label, linked in (("source_profile_id", source_id), ("payer_profile_id", payer_id)):
        if linked is not None and (not is_storable_id(linked) or session.get(AwsProfile, linked) is None):
            raise InvalidInput(f"{label}: profile {linked} does not exist")


def create_profile(session: Session, *, actor: Actor, data: ProfileCreate) -> ProfileRead:
    """Create a profile (admins only); secrets are encrypted before they reach the database."""
    require_role(actor, "admin")
    if session.scalar(select(AwsProfile.id).where(AwsProfile.name == data.name)) is not None:
        raise Conflict(f"A profile named '{data.name}' already exists.")
    _check_links(session, actor=actor, source_id=data.source_profile_id, payer_id=data.payer_profile_id)
    profile = AwsProfile(name=data.name, description=data.description, auth_type=data.auth_type,
                         role_arn=data.role_arn, source_profile_id=data.source_profile_id,
                         default_regions=data.default_regions, is_payer=data.is_payer,
                         payer_profile_id=data.payer_profile_id, created_by_id=actor.user_id)
    _seal(profile, "access_key_id_encrypted", data.access_key_id)
    _seal(profile, "secret_access_key_encrypted", data.secret_access_key)
    _seal(profile, "session_token_encrypted", data.session_token)
    _seal(profile, "external_id_encrypted", data.external_id)
    session.add(profile)
    session.flush()
    audit.record(session, actor=actor, action="profile.create", object_type="aws_profile",
                 object_id=profile.id, details={"name": profile.name, "auth_type": profile.auth_type})
    return _read(profile)


def update_profile(session: Session, *, actor: Actor, profile_id: int, data: ProfileUpdate) -> ProfileRead:
    """Change a profile (admins only); only the fields given change."""
    require_role(actor, "admin")
    profile = _get(session, actor=actor, profile_id=profile_id)
    changes = data.model_dump(exclude_unset=True)
    _check_links(session, actor=actor, source_id=None, payer_id=changes.get("payer_profile_id"))
    secret_fields = {"access_key_id": "access_key_id_encrypted", "secret_access_key": "secret_access_key_encrypted",
                     "session_token": "session_token_encrypted", "external_id": "external_id_encrypted"}
    for field, value in changes.items():
        if field in secret_fields:
            _seal(profile, secret_fields[field], value)
        else:
            setattr(profile, field, value)
    audit.record(session, actor=actor, action="profile.update", object_type="aws_profile", object_id=profile.id,
                 details={"fields": sorted(changes)})  # names only: never the values
    return _read(profile)


def delete_profile(session: Session, *, actor: Actor, profile_id: int) -> None:
    """Delete a profile (admins only)."""
    require_role(actor, "admin")
    profile = _get(session, actor=actor, profile_id=profile_id)
    if session.scalar(select(AwsProfile.id).where(AwsProfile.source_profile_id == profile_id)):
        raise Conflict("Another profile assumes its role through this one: change that profile first.")
    audit.record(session, actor=actor, action="profile.delete", object_type="aws_profile", object_id=profile.id,
                 details={"name": profile.name})
    session.delete(profile)


def _get_runnable(session: Session, *, actor: Actor, profile_id: int) -> AwsProfile:
    profile = _get(session, actor=actor, profile_id=profile_id)
    if not actor.has_role("admin") and actor.user_id is not None and not session.scalar(
            select(ProfileGrant.can_run_jobs).where(ProfileGrant.user_id == actor.user_id,
                                                    ProfileGrant.profile_id == profile_id)):
        raise PermissionDenied(f"You may see profile '{profile.name}' but not run jobs with it.")
    return profile


def check_may_run(session: Session, *, actor: Actor, profile_id: int) -> None:
    """Raise NotFound or PermissionDenied unless the actor may run jobs with this profile."""
    _get_runnable(session, actor=actor, profile_id=profile_id)


def get_credentials(session: Session, *, actor: Actor, profile_id: int, purpose: str) -> ProfileCredentials:
    """Decrypt a profile's credentials for one use, and record that use.

    Admins may use any profile; anyone else only a profile granted to them for running jobs.
    """
    profile = _get_runnable(session, actor=actor, profile_id=profile_id)
    source = profile
    if profile.auth_type == "assume_role":
        if profile.source_profile_id is None:
            raise InvalidInput(f"Profile '{profile.name}' has no source profile to assume its role from.")
        source = _get(session, actor=Actor.system(), profile_id=profile.source_profile_id)
    key, secret = _open(source, "access_key_id_encrypted"), _open(source, "secret_access_key_encrypted")
    if not key or not secret:
        raise InvalidInput(f"Profile '{source.name}' has no access key.")
    audit.record(session, actor=actor, action="credential.use", object_type="aws_profile", object_id=profile.id,
                 details={"purpose": purpose})
    return ProfileCredentials(
        name=profile.name, access_key_id=key, secret_access_key=secret,
        session_token=_open(source, "session_token_encrypted"), region=profile.default_regions[0],
        role_arn=profile.role_arn if profile.auth_type == "assume_role" else None,
        external_id=_open(profile, "external_id_encrypted"),
    )


def boto_session(credentials: ProfileCredentials, *, endpoint_url: str | None = None,
                 config: Config | None = None) -> boto3.Session:
    """Return a boto3 session for the credentials, assuming the role when the profile has one."""
    base = boto3.Session(aws_access_key_id=credentials.access_key_id,
                         aws_secret_access_key=credentials.secret_access_key,
                         aws_session_token=credentials.session_token, region_name=credentials.region)
    if not credentials.role_arn:
        return base
    sts = base.client("sts", endpoint_url=endpoint_url, config=config or _CLIENT_CONFIG)
    extra = {"ExternalId": credentials.external_id} if credentials.external_id else {}
    assumed = sts.assume_role(RoleArn=credentials.role_arn, RoleSessionName="finops-dashboard",
                              **extra)["Credentials"]
    return boto3.Session(aws_access_key_id=assumed["AccessKeyId"], aws_secret_access_key=assumed["SecretAccessKey"],
                         aws_session_token=assumed["SessionToken"], region_name=credentials.region)


_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "adaptive"}, connect_timeout=5, read_timeout=20)
#: The connection test runs inside a web request: one retry and short timeouts, so that it answers in
#: seconds (with the job settings above a silent endpoint held the page for over a minute).
_TEST_CONFIG = Config(retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=3)
_ERROR_WORDS = {
    "InvalidClientTokenId": "AWS does not recognise this access key id. Check it, or create a new key.",
    "SignatureDoesNotMatch": "The secret access key does not match the access key id. Enter the secret again.",
    "UnrecognizedClientException": "AWS does not recognise this access key id. Check it, or create a new key.",
    "ExpiredToken": "The session token has expired. Enter fresh temporary credentials.",
    "AccessDenied": "The credentials work but may not do this: allow sts:AssumeRole on the role and its trust policy.",
    "Throttling": "AWS is throttling requests for this account. Try again in a minute.",
    "ThrottlingException": "AWS is throttling requests for this account. Try again in a minute.",
    "RegionDisabledException": "STS is disabled in this region for the account. Choose another default region.",
}


def explain(exc: Exception, *, region: str) -> str:
    """Turn an AWS error into words a user can act on."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return _ERROR_WORDS.get(code, f"AWS refused the request ({code}).")
    if isinstance(exc, EndpointConnectionError):
        return f"Cannot reach AWS in region {region}. Check the region and the network path to AWS."
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return (f"AWS did not answer in time in region {region}. Check the network path to AWS (proxy, "
                "firewall), then test again.")
    if isinstance(exc, NoCredentialsError):
        return "The profile has no credentials."
    return f"The connection test failed ({type(exc).__name__})."


def test_connection(session: Session, *, actor: Actor, profile_id: int,
                    endpoint_url: str | None = None) -> ConnectionTest:
    """Call STS GetCallerIdentity with the profile and record the outcome on it."""
    require_role(actor, "admin")
    endpoint_url = endpoint_url or _endpoint_url
    credentials = get_credentials(session, actor=actor, profile_id=profile_id, purpose="connection test")
    profile = _get(session, actor=actor, profile_id=profile_id)
    try:
        client = boto_session(credentials, endpoint_url=endpoint_url, config=_TEST_CONFIG).client(
            "sts", endpoint_url=endpoint_url, config=_TEST_CONFIG)
        identity = client.get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        logger.info("connection test of profile %s failed: %s", profile.name, type(exc).__name__)
        result = ConnectionTest(is_ok=False, message=explain(exc, region=credentials.region))
    else:
        result = ConnectionTest(is_ok=True, message=f"Connected to account {identity['Account']}.",
                                account_id=identity["Account"], arn=identity["Arn"])
        profile.account_id = identity["Account"]
    profile.last_tested_at = utcnow()
    profile.last_test_ok = result.is_ok
    audit.record(session, actor=actor, action="profile.test", object_type="aws_profile", object_id=profile_id,
                 outcome="success" if result.is_ok else "failure", details={"message": result.message})
    return result


def rotate_keys(session: Session) -> dict[str, int]:
    """Re-encrypt every stored secret under the newest key; return how many values moved."""
    ring = crypto.keyring()
    moved = {"aws_profiles": 0, "mfa_devices": 0}
    for profile in session.scalars(select(AwsProfile)):
        for column in _ENCRYPTED:
            value = _open(profile, column)
            if value is not None and ring.key_id_of(getattr(profile, column)) != ring.current_kid:
                _seal(profile, column, value)
                moved["aws_profiles"] += 1
    for device in session.scalars(select(MFADevice)):
        if ring.key_id_of(device.secret_encrypted) != ring.current_kid:
            context = mfa_secret_context(device.user_id)
            device.secret_encrypted = ring.encrypt(ring.decrypt(device.secret_encrypted, context=context),
                                                   context=context)
            moved["mfa_devices"] += 1
    audit.record(session, actor=Actor.system("keys rotate"), action="keys.rotate", details={**moved})
    return moved

"""AWS profiles: secrets encrypted and never shown, strict input, STS tests against moto, rotation."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from sqlalchemy import select

from models import AuditLog, AwsProfile, MFADevice
from services import crypto, validation
from services.aws import profiles
from services.aws.credentials import ProfileCredentials
from services.crypto import Keyring
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.identity.permissions import Actor
from services.runner._aws_files import check_credentials  # the rule of the AWS files a run writes
from tests.factories import enrol_totp, make_user

ADMIN = Actor(user_id=None, username="root", roles=frozenset({"admin"}))
ENGINEER = Actor(user_id=999, username="eng", roles=frozenset({"engineering"}))
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def _keys_profile(name: str = "prod", **extra: object) -> profiles.ProfileCreate:
    values = {"name": name, "access_key_id": KEY_ID, "secret_access_key": SECRET,
              "default_regions": ["eu-west-1", "us-east-1"], **extra}
    return validation.parse(profiles.ProfileCreate, values)  # type: ignore[return-value]


def test_secrets_are_encrypted_at_rest_and_never_returned(session):
    created = profiles.create_profile(session, actor=ADMIN, data=_keys_profile())
    row = session.get(AwsProfile, created.id)
    assert SECRET not in row.secret_access_key_encrypted and KEY_ID not in row.access_key_id_encrypted
    shown = created.model_dump_json()
    assert SECRET not in shown and KEY_ID not in shown and created.access_key_hint == "AKIA…MPLE"
    audit_text = json.dumps([a.details for a in session.scalars(select(AuditLog))])
    assert SECRET not in audit_text and KEY_ID not in audit_text


def test_credentials_decrypt_for_use_and_the_use_is_audited(session):
    created = profiles.create_profile(session, actor=ADMIN, data=_keys_profile())
    creds = profiles.get_credentials(session, actor=ADMIN, profile_id=created.id, purpose="collect")
    assert (creds.access_key_id, creds.secret_access_key, creds.region) == (KEY_ID, SECRET, "eu-west-1")
    assert SECRET not in repr(creds)
    assert session.scalar(select(AuditLog).where(AuditLog.action == "credential.use")).details == {"purpose": "collect"}


def test_update_replaces_a_secret_only_when_given(session):
    created = profiles.create_profile(session, actor=ADMIN, data=_keys_profile())
    before = session.get(AwsProfile, created.id).secret_access_key_encrypted
    profiles.update_profile(session, actor=ADMIN, profile_id=created.id,
                            data=validation.parse(profiles.ProfileUpdate, {"description": "main"}))
    assert session.get(AwsProfile, created.id).secret_access_key_encrypted == before


@pytest.mark.parametrize("values, field", [
    ({"default_regions": ["mars-1"]}, "default_regions"),
    ({"access_key_id": "not-a-key"}, "access_key_id"),
    ({"name": "-rf"}, "name"),
    ({"account_id": "123"}, "account_id"),  # not writable: found by the connection test
    ({"secret_access_key": None}, "a keys profile needs"),
    ({"auth_type": "assume_role", "role_arn": "arn:aws:iam::12:role/x", "source_profile_id": 1}, "role_arn"),
])
def test_invalid_profile_input_is_refused_naming_the_field(values, field):
    base = {"name": "p", "access_key_id": KEY_ID, "secret_access_key": SECRET}
    with pytest.raises(InvalidInput, match=field):
        validation.parse(profiles.ProfileCreate, {**base, **values})


def test_duplicate_name_is_a_conflict(session):
    profiles.create_profile(session, actor=ADMIN, data=_keys_profile())
    with pytest.raises(Conflict):
        profiles.create_profile(session, actor=ADMIN, data=_keys_profile())


def test_only_admins_create_and_others_see_only_granted_profiles(session):
    with pytest.raises(PermissionDenied):
        profiles.create_profile(session, actor=ENGINEER, data=_keys_profile())
    created = profiles.create_profile(session, actor=ADMIN, data=_keys_profile())
    assert profiles.list_profiles(session, actor=ENGINEER) == []
    with pytest.raises(NotFound):
        profiles.get_profile(session, actor=ENGINEER, profile_id=created.id)


def test_connection_test_against_sts_fills_the_account(session, moto):
    created = profiles.create_profile(session, actor=ADMIN, data=_keys_profile())
    result = profiles.test_connection(session, actor=ADMIN, profile_id=created.id, endpoint_url=moto)
    assert result.is_ok and result.account_id == "123456789012"
    assert profiles.get_profile(session, actor=ADMIN, profile_id=created.id).account_id == "123456789012"


def test_assume_role_profile_reaches_the_other_account(session, moto):
    source = profiles.create_profile(session, actor=ADMIN, data=_keys_profile("payer"))
    role = validation.parse(profiles.ProfileCreate, {
        "name": "linked", "auth_type": "assume_role", "role_arn": "arn:aws:iam::210987654321:role/FinOpsRead",
        "source_profile_id": source.id, "external_id": "finops-ext-1"})
    linked = profiles.create_profile(session, actor=ADMIN, data=role)  # type: ignore[arg-type]
    result = profiles.test_connection(session, actor=ADMIN, profile_id=linked.id, endpoint_url=moto)
    assert result.is_ok and result.account_id == "210987654321"


def test_unreachable_endpoint_is_explained(session):
    created = profiles.create_profile(session, actor=ADMIN, data=_keys_profile())
    result = profiles.test_connection(session, actor=ADMIN, profile_id=created.id, endpoint_url="http://127.0.0.1:9")
    assert not result.is_ok and "Cannot reach AWS in region eu-west-1" in result.message


@pytest.fixture()
def silent_endpoint():
    """An endpoint that takes each request and never answers (a stuck proxy or firewall): the URL
    and the requests it was sent."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    seen, held, stop = [], [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)
            conn.settimeout(5)
            try:
                seen.append(conn.recv(65536))
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
    stop.set()
    thread.join(5)
    for conn in [*held, server]:
        conn.close()


def test_connection_test_of_an_endpoint_that_never_answers_gives_up_soon_with_a_clear_reason(session,
                                                                                             silent_endpoint):
    url, seen = silent_endpoint
    created = profiles.create_profile(session, actor=ADMIN, data=_keys_profile())
    result = profiles.test_connection(session, actor=ADMIN, profile_id=created.id, endpoint_url=url)
    assert not result.is_ok and "AWS did not answer in time" in result.message and "eu-west-1" in result.message
    assert 1 <= len(seen) <= 2  # one retry at most: the test answers while its page waits


@pytest.mark.parametrize("code, words", [("InvalidClientTokenId", "does not recognise"),
                                         ("SignatureDoesNotMatch", "secret access key does not match"),
                                         ("AccessDenied", "may not do this"),
                                         ("Throttling", "throttling")])
def test_aws_errors_are_explained_in_words_a_user_can_act_on(code, words):
    error = ClientError({"Error": {"Code": code, "Message": "x"}}, "GetCallerIdentity")
    assert words in profiles.explain(error, region="us-east-1")
    assert "us-west-2" in profiles.explain(EndpointConnectionError(endpoint_url="x"), region="us-west-2")


def test_rotation_moves_every_secret_to_the_newest_key(session):
    old_spec = Keyring.generate_spec("old")
    crypto.configure(old_spec)
    created = profiles.create_profile(session, actor=ADMIN, data=_keys_profile())
    user = make_user(session)
    enrol_totp(session, user=user)
    new_spec = Keyring.generate_spec("new")
    crypto.configure(f"{new_spec},{old_spec}")
    moved = profiles.rotate_keys(session)
    assert moved == {"aws_profiles": 2, "mfa_devices": 1}
    crypto.configure(new_spec)  # the old key is gone: everything still decrypts
    creds = profiles.get_credentials(session, actor=ADMIN, profile_id=created.id, purpose="check")
    assert creds.secret_access_key == SECRET
    device = session.scalar(select(MFADevice))
    assert crypto.keyring().key_id_of(device.secret_encrypted) == "new"


@pytest.mark.parametrize("profile_id", [2**31, 10**20])
def test_a_profile_id_beyond_the_id_range_is_not_found(db_url, profile_id):
    from services import database
    from services.errors import NotFound
    from services.identity.permissions import Actor

    with database.session_scope() as s, pytest.raises(NotFound):
        profiles.get_profile(s, actor=Actor.system(), profile_id=profile_id)


@pytest.mark.parametrize("secret_field, value", [
    ("secret_access_key", "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"),  # '-' is not in AWS's alphabet
    ("secret_access_key", "wJalrXUtnFEMI K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n[evil]"),
    ("secret_access_key", "A" * 129),
    ("session_token", "FwoGZXIvYXdzE-short-and-dashed"),
    ("session_token", "FwoGZXIvYXdzEBaaaaaaaa; credential_process = x"),
])
def test_a_secret_the_runner_cannot_write_is_refused_when_the_profile_is_saved(secret_field, value):
    with pytest.raises(InvalidInput):
        check_credentials([ProfileCredentials(name="p", access_key_id=KEY_ID,
                                              **{"secret_access_key": SECRET, secret_field: value})])
    base = {"name": "p", "access_key_id": KEY_ID, "secret_access_key": SECRET}
    with pytest.raises(InvalidInput, match=secret_field):
        validation.parse(profiles.ProfileCreate, {**base, secret_field: value})
    with pytest.raises(InvalidInput, match=secret_field):
        validation.parse(profiles.ProfileUpdate, {secret_field: value})


def test_every_secret_the_api_accepts_the_runner_writes():
    token = "FwoGZXIvYXdzEBYaDH+/abc=" * 20
    data = validation.parse(profiles.ProfileCreate, {"name": "p", "access_key_id": KEY_ID,
                                                     "secret_access_key": SECRET, "session_token": token})
    check_credentials([ProfileCredentials(name=data.name, access_key_id=data.access_key_id,
                                          secret_access_key=data.secret_access_key,
                                          session_token=data.session_token)])

"""The run's AWS profiles, as the config and credentials files of its scratch HOME.

Private to ``services.runner``. What is written is checked first: nothing may open a new section
or add a setting (such as ``credential_process``) to the files the AWS tools read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from services.aws.credentials import ProfileCredentials
from services.errors import InvalidInput
from services.runner.commands import AccessKeyId, ExternalId, ProfileName, Region, RoleArn, SecretText, SessionToken

_CREDENTIAL_FIELDS = ("name", "access_key_id", "secret_access_key", "session_token", "region", "role_arn",
                      "source_profile", "external_id")


def _key_profile(profile: ProfileCredentials) -> str:
    """Name of the credentials-file section that holds the keys."""
    if profile.role_arn is None:
        return profile.name
    return profile.source_profile or f"{profile.name}-source"


class _CredentialsCheck(BaseModel):
    """What may be written into an AWS config file: nothing that could open a new section."""

    model_config = ConfigDict(extra="forbid")

    name: ProfileName
    access_key_id: AccessKeyId
    secret_access_key: SecretText
    session_token: SessionToken | None
    region: Region
    role_arn: RoleArn | None
    source_profile: ProfileName | None
    external_id: ExternalId | None

    @model_validator(mode="after")
    def _source_is_another_profile(self) -> _CredentialsCheck:
        if self.source_profile is not None and self.source_profile == self.name:
            raise ValueError("source_profile must name another profile")
        if self.role_arn is None and (self.source_profile or self.external_id):
            raise ValueError("source_profile and external_id need a role_arn")
        return self


def check_credentials(profiles: Sequence[ProfileCredentials]) -> None:
    """Refuse malformed credentials, two sets of keys for one section, and repeated profile names."""
    key_sections: dict[str, tuple[str, str, str | None]] = {}
    for profile in profiles:
        try:
            _CredentialsCheck.model_validate({f: getattr(profile, f, None) for f in _CREDENTIAL_FIELDS})
        except ValidationError as exc:
            fields = sorted({str(e["loc"][0]) if e["loc"] else "profile" for e in exc.errors()})
            raise InvalidInput("The credentials of an AWS profile are malformed.",
                               details={"fields": fields}) from None
        keys = (profile.access_key_id, profile.secret_access_key, profile.session_token)
        if key_sections.setdefault(_key_profile(profile), keys) != keys:
            raise InvalidInput(f"Two profiles give different keys for '{_key_profile(profile)}'.")
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise InvalidInput("Profile names must be unique.")



def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


class _KeylessCheck(BaseModel):
    name: ProfileName


def write_aws_files(aws_dir: Path, profiles: Sequence[ProfileCredentials],
                    keyless: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write an AWS config and credentials file (mode 0600) holding the given profiles, and the
    ``keyless`` ones: a region and no credentials, so botocore refuses their calls unsent."""
    check_credentials(profiles)
    taken = {p.name for p in profiles} | {_key_profile(p) for p in profiles}
    for name in keyless:
        try:
            _KeylessCheck.model_validate({"name": name})
        except ValidationError:
            raise InvalidInput("A keyless profile name is malformed.") from None
        if name in taken:
            raise InvalidInput("A keyless profile takes the name of another profile.")
    config_lines: list[str] = [line for name in keyless for line in (f"[profile {name}]", "region = us-east-1", "")]
    credential_lines: list[str] = []
    written_keys: set[str] = set()
    for profile in profiles:
        config_lines += [f"[profile {profile.name}]", f"region = {profile.region}", "output = json"]
        if profile.role_arn is not None:
            config_lines += [f"role_arn = {profile.role_arn}", f"source_profile = {_key_profile(profile)}"]
            if profile.external_id is not None:
                config_lines.append(f"external_id = {profile.external_id}")
        config_lines.append("")
        if _key_profile(profile) not in written_keys:
            written_keys.add(_key_profile(profile))
            credential_lines += [f"[{_key_profile(profile)}]", f"aws_access_key_id = {profile.access_key_id}",
                                 f"aws_secret_access_key = {profile.secret_access_key}"]
            if profile.session_token is not None:
                credential_lines.append(f"aws_session_token = {profile.session_token}")
            credential_lines.append("")
    aws_dir.mkdir(mode=0o700, exist_ok=True)
    config, credentials = aws_dir / "config", aws_dir / "credentials"
    _write_private(config, "\n".join(config_lines))
    _write_private(credentials, "\n".join(credential_lines))
    return config, credentials

"""Decrypted AWS profile credentials: what one use of a profile needs, in one value type.

``profiles.get_credentials`` makes them; the collectors sign in to boto3 with them and the CLI
runner writes them into a run's scratch HOME. No imports beyond the standard library, so the
runner can take this type without depending on the rest of the AWS domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: A secret access key: AWS issues 40 characters of base64 ([A-Za-z0-9/+=]); 16 to 128 are taken.
#: The runner writes it into an AWS credentials file (INI), where nothing else is safe: no
#: space, newline, '[', ';' or '#' may open a section, add a setting or end the value.
SECRET_ACCESS_KEY_PATTERN = r"^[A-Za-z0-9/+=]{16,128}$"  # noqa: S105 - a pattern, not a secret
#: A session token (STS): base64 as well, far longer.
SESSION_TOKEN_PATTERN = r"^[A-Za-z0-9/+=]{16,8192}$"  # noqa: S105 - a pattern, not a secret


@dataclass(frozen=True, kw_only=True)
class ProfileCredentials:
    """A decrypted AWS profile for one use; never logged, stored or put in a task message.

    With ``role_arn``, the keys are those of the source profile, and the role is assumed with them
    (by ``profiles.boto_session``, or by the AWS tools themselves from the runner's config file,
    where the keys sit in the section ``source_profile``, or ``<name>-source``).
    """

    name: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    role_arn: str | None = None
    source_profile: str | None = None
    external_id: str | None = field(default=None, repr=False)

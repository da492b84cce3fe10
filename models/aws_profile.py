"""AWS profiles and the accounts they reach."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin
from models.types import UTCDateTime


class AwsProfile(TimestampMixin, Base):
    __tablename__ = "aws_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    account_id: Mapped[str | None] = mapped_column(String(12))
    is_payer: Mapped[bool] = mapped_column(Boolean, default=False)
    payer_profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("aws_profiles.id", ondelete="SET NULL")
    )
    #: "keys" (access key + secret) or "assume_role" (role ARN from a source profile).
    auth_type: Mapped[str] = mapped_column(String(16), default="keys")
    access_key_id_encrypted: Mapped[str | None] = mapped_column(String(512))
    secret_access_key_encrypted: Mapped[str | None] = mapped_column(String(512))
    session_token_encrypted: Mapped[str | None] = mapped_column(String(8192))
    role_arn: Mapped[str | None] = mapped_column(String(2048))
    external_id_encrypted: Mapped[str | None] = mapped_column(String(2048))
    source_profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("aws_profiles.id", ondelete="SET NULL")
    )
    default_regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_tested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AwsAccount(Base):
    """A linked (usage) or payer account, with the name Organizations gives it."""

    __tablename__ = "aws_accounts"

    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    payer_account_id: Mapped[str | None] = mapped_column(String(128))
    provider: Mapped[str] = mapped_column(String(32), default="AWS")
    email: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")

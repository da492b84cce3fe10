from __future__ import annotations

import pytest

from dashapp.settings import ConfigError, Settings, to_limit_string
from services.crypto import Keyring

COMPLETE = {
    "SECRET_KEY": "s" * 40,
    "DATABASE_URL": "postgresql+psycopg://db/finops",
    "CELERY_BROKER_URL": "redis://localhost:6379/0",
    "ENCRYPTION_KEYS": Keyring.generate_spec(),
    "AUDIT_HMAC_KEY": "a" * 32,
}


@pytest.mark.parametrize("missing", sorted(COMPLETE))
def test_missing_required_setting_is_named_in_one_line(missing):
    values = {k: v for k, v in COMPLETE.items() if k != missing}
    with pytest.raises(ConfigError) as info:
        Settings(_env_file=None, **values).require_complete()
    assert str(info.value).startswith(f"{missing} is not set")
    assert "\n" not in str(info.value)


def test_defaults_match_the_configuration_reference():
    settings = Settings(_env_file=None, **COMPLETE).require_complete()
    assert settings.DEBUG is False
    assert settings.MFA_REQUIRED is True
    assert settings.SESSION_TIMEOUT == 3600
    assert settings.RATE_LIMIT_LOGIN == "5/minute"
    assert settings.RATE_LIMIT_API == "100/hour"


def test_short_secret_key_is_refused():
    with pytest.raises(ConfigError, match="SECRET_KEY is too short"):
        Settings(_env_file=None, **{**COMPLETE, "SECRET_KEY": "short"}).require_complete()


@pytest.mark.parametrize("given, expected", [("5/m", "5/minute"), ("100/h", "100/hour"),
                                             ("10/second", "10/second"), ("3/days", "3/day")])
def test_rate_limits_accept_the_short_forms(given, expected):
    assert to_limit_string(given) == expected


@pytest.mark.parametrize("given", ["five/m", "5", "5/fortnight", ""])
def test_nonsense_rate_limit_is_refused(given):
    with pytest.raises(ValueError, match="is not a rate"):
        to_limit_string(given)


@pytest.mark.parametrize("given, expected", [("self", "'self'"), ("'self' https://intranet.example.com",
                                                                  "'self' https://intranet.example.com"),
                                             ("none", "'none'"), ("", "'self'")])
def test_frame_ancestors_keywords_keep_their_quotes(given, expected):
    assert expected == Settings(_env_file=None, FRAME_ANCESTORS=given).FRAME_ANCESTORS


@pytest.mark.parametrize("given, expected", [
    ("", ()), ("https://finops.example.com", ("https://finops.example.com",)),
    ("HTTPS://Finops.Example.com/, http://10.0.0.5:8050", ("https://finops.example.com", "http://10.0.0.5:8050")),
])
def test_trusted_origins_are_read_as_a_list_of_origins(given, expected):
    assert Settings(_env_file=None, TRUSTED_ORIGINS=given).trusted_origins == expected


@pytest.mark.parametrize("given", ["finops.example.com", "https://finops.example.com/dashboard", "null", "*"])
def test_a_trusted_origin_that_is_not_an_origin_is_refused(given):
    with pytest.raises(ValueError, match="TRUSTED_ORIGINS"):
        Settings(_env_file=None, TRUSTED_ORIGINS=given)

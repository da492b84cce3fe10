from __future__ import annotations

import pytest

from services.crypto import Keyring
from services.errors import InvalidInput


def test_value_encrypted_under_old_key_decrypts_after_new_key_is_added():
    old_spec = Keyring.generate_spec("old")
    token = Keyring.parse(old_spec).encrypt("AKIAEXAMPLE", context="aws_profiles.access_key")
    both = Keyring.parse(Keyring.generate_spec("new") + "," + old_spec)
    assert both.current_kid == "new"
    assert both.decrypt(token, context="aws_profiles.access_key") == "AKIAEXAMPLE"
    assert both.key_id_of(both.encrypt("x")) == "new"


def test_ciphertext_does_not_contain_plaintext_and_differs_each_time():
    ring = Keyring.parse(Keyring.generate_spec())
    first, second = ring.encrypt("s3cr3t-value"), ring.encrypt("s3cr3t-value")
    assert "s3cr3t" not in first and first != second


def test_value_moved_to_another_column_fails_integrity_check():
    ring = Keyring.parse(Keyring.generate_spec())
    token = ring.encrypt("secret", context="column-a")
    with pytest.raises(InvalidInput, match="integrity"):
        ring.decrypt(token, context="column-b")


@pytest.mark.parametrize("spec, message", [
    ("", "holds no key"),
    ("nokey", "kid:base64key"),
    ("k1:not*base64", "not valid base64"),
    ("k1:c2hvcnQ=", "32 bytes"),
])
def test_bad_key_configuration_is_refused_with_reason(spec, message):
    with pytest.raises(InvalidInput, match=message):
        Keyring.parse(spec)

"""Organizations: an account outside an organisation (moto answers an empty list there)."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from services.aws import organizations

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_an_account_outside_an_organisation_is_a_note_not_an_error(session):
    # moto answers ListAccounts with an empty list where AWS raises AWSOrganizationsNotInUseException
    client = boto3.client("organizations", region_name="us-east-1", aws_access_key_id=KEY_ID,
                          aws_secret_access_key=SECRET)
    with Stubber(client) as stubber:
        stubber.add_client_error("list_accounts", "AWSOrganizationsNotInUseException",
                                 "Your account is not a member of an organization.", 400)
        outcome = organizations.collect_accounts(session, organizations=client, payer_account_id="123456789012")
    assert outcome.rows == 0 and "not in an AWS organisation" in (outcome.note or "")

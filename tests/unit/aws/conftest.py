"""A Cost Explorer client answered by botocore's Stubber, for the APIs moto lacks; responses are
validated against botocore's own service model."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from services.aws.collectors import RequestMeter

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture()
def ce():  # type: ignore[no-untyped-def]
    """A real Cost Explorer client whose requests are counted and answered by a Stubber."""
    client = boto3.client("ce", region_name="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    meter = RequestMeter()
    meter.attach(client)
    with Stubber(client) as stubber:
        yield client, stubber, meter
        stubber.assert_no_pending_responses()

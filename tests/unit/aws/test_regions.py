"""The one list of AWS regions that profiles, collectors and the CLI runner check against."""

from __future__ import annotations

import boto3

from services.aws.regions import AWS_REGIONS


def test_regions_are_real_aws_region_codes():
    session = boto3.Session()
    known = {r for partition in ("aws", "aws-us-gov", "aws-cn")
             for r in session.get_available_regions("ec2", partition_name=partition)}
    assert known >= AWS_REGIONS

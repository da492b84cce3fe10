"""The allow-list as data: every parameter of every command refuses an injection corpus before
anything starts; argv arrays are built from the models, never from strings."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from services.aws.credentials import ProfileCredentials
from services.errors import InvalidInput
from services.runner.commands import (
    COMMANDS,
    FORBIDDEN_FLAGS,
    SAMPLE_PROFILE,
    AwsCeGetCostAndUsage,
    AwsFinopsAudit,
    AwsFinopsCost,
    AwsFinopsTrend,
    AwsStsGetCallerIdentity,
    CliCommand,
    parse_command,
)

ALPHA = ProfileCredentials(name="alpha", access_key_id="AKIAIOSFODNN7EXAMPLE",
                           secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region="eu-west-1")


# --- the injection corpus -------------------------------------------------------------------

INJECTIONS: dict[str, object] = {
    "semicolon": "x; id",
    "and-and": "x && id",
    "pipe": "x | id",
    "backticks": "`id`",
    "dollar-paren": "$(id)",
    "dollar-brace": "${HOME}",
    "newline": "x\nid",
    "carriage-return": "x\rid",
    "nul": "x\x00y",
    "tab": "x\ty",
    "escape-sequence": "x\x1b[31m",
    "bidi-override": "x\u202ey",
    "zero-width": "x\u200by",
    "leading-dash": "-x",
    "endpoint-url": "--endpoint-url",
    "endpoint-url-value": "--endpoint-url=http://evil.example",
    "dot-dot-slash": "../../etc/passwd",
    "file-url": "file:///etc/passwd",
    "quote": "x'y",
    "double-quote": 'x"y',
    "redirect": "x>y",
    "glob": "*",
    "fullwidth": "\uff58",
    "10k-chars": "a" * 10_000,
    "non-utf8-bytes": b"\xff\xfe",
    "bytes": b"alpha",
    "lone-surrogate": "x\udcff",
}

#: A valid value for every field of every allow-listed command (each injection replaces one).
VALID: dict[type[CliCommand], dict[str, Any]] = {
    AwsFinopsCost: {"profiles": ["alpha"], "regions": ["us-east-1"], "time_range_days": 30, "last_month": False,
                    "tags": {"Team": "FinOps"}, "report_name": "monthly", "report_types": ["json", "csv"],
                    "lead_with_sample": False},
    AwsFinopsTrend: {"profiles": ["alpha"], "tags": {"Team": "FinOps"}, "report_name": "trend"},
    AwsFinopsAudit: {"profiles": ["alpha"], "regions": ["us-east-1"], "report_name": "audit",
                     "report_types": ["json"]},
    AwsStsGetCallerIdentity: {"profile": "alpha"},
    AwsCeGetCostAndUsage: {"profile": "alpha", "start": dt.date(2025, 1, 1), "end": dt.date(2025, 2, 1),
                           "granularity": "DAILY", "metrics": ["UnblendedCost"], "group_by": "SERVICE"},
    COMMANDS["aws.ec2.describe-instances"]: {"profile": "alpha", "region": "eu-west-1", "max_items": 50,
                                             "states": ["running"]},
    COMMANDS["aws.ec2.describe-volumes"]: {"profile": "alpha", "region": "eu-west-1", "max_items": 50,
                                           "statuses": ["available"]},
    COMMANDS["aws.ec2.describe-addresses"]: {"profile": "alpha", "region": "eu-west-1"},
    COMMANDS["aws.rds.describe-db-instances"]: {"profile": "alpha", "region": "eu-west-1", "max_items": 50},
    COMMANDS["aws.budgets.describe-budgets"]: {"profile": "alpha", "account_id": "111111111111", "max_items": 50},
    COMMANDS["aws.organizations.list-accounts"]: {"profile": "alpha", "max_items": 50},
}


def _slots() -> list[tuple[type[CliCommand], str, str]]:
    """(command, field, where): every parameter, and for lists and maps each part of it."""
    slots = []
    for cls, example in VALID.items():
        for name, value in example.items():
            if isinstance(value, dict):
                slots += [(cls, name, "key"), (cls, name, "value")]
            else:
                slots.append((cls, name, "item" if isinstance(value, list) else "scalar"))
    return slots


def _inject(cls: type[CliCommand], name: str, where: str, bad: object) -> dict[str, Any]:
    params = dict(VALID[cls])
    original = params[name]
    if where == "item":
        params[name] = [bad]
    elif where == "key":
        params[name] = {bad: next(iter(original.values()))}
    elif where == "value":
        params[name] = {next(iter(original)): bad}
    else:
        params[name] = bad
    return params


SLOTS = _slots()
CASES = [pytest.param(cls, name, where, bad, id=f"{cls.name}-{name}-{where}-{label}")
         for cls, name, where in SLOTS for label, bad in INJECTIONS.items()]




def test_the_injection_corpus_covers_every_parameter_of_every_allow_listed_command():
    assert set(VALID) == set(COMMANDS.values())
    for cls, example in VALID.items():
        assert set(example) == set(cls.model_fields), cls.name
        parse_command(cls.name, example)  # the baseline is valid: only the injected value is refused
    assert len(SLOTS) == 42
    assert len(CASES) == len(SLOTS) * len(INJECTIONS) == 1134


@pytest.mark.parametrize("cls, name, where, bad", CASES)
def test_every_injection_is_refused_before_a_process_starts(production_runner, cls, name, where, bad):
    params = _inject(cls, name, where, bad)
    with pytest.raises(InvalidInput) as refused:
        parse_command(cls.name, params)
    assert refused.value.details["errors"]
    # A model built without validation is validated again by the runner, before anything starts.
    with pytest.raises(InvalidInput):
        production_runner.run(cls.model_construct(**params), profiles=[ALPHA])
    assert production_runner.spawn_count == 0


def test_refusals_never_echo_the_refused_text():
    with pytest.raises(InvalidInput) as refused:
        parse_command("aws_finops.cost", {"profiles": ["alpha"], "tags": {"$(id)": "x"}, "$(reboot)": 1})
    assert "$(" not in json.dumps(refused.value.details)


@pytest.mark.parametrize("name, params", [
    ("aws.s3.rm", {"profile": "alpha"}),
    ("aws_finops.cost", {"profiles": ["alpha"], "endpoint_url": "http://evil.example"}),
    ("aws_finops.cost", {"profiles": ["alpha"], "dir": "/etc"}),
    ("aws_finops.cost", {"profiles": ["alpha"], "regions": ["mars-north-1"]}),
    ("aws_finops.cost", {"profiles": ["alpha"], "time_range_days": 0}),
    ("aws_finops.cost", {"profiles": ["alpha"], "time_range_days": "30"}),
    ("aws_finops.cost", {"profiles": ["alpha"], "time_range_days": 30, "last_month": True}),
    ("aws_finops.cost", {"profiles": ["alpha", "alpha"]}),
    ("aws_finops.cost", {"profiles": []}),
    ("aws_finops.audit", {"profiles": ["alpha"], "report_types": ["html"]}),
    ("aws.ce.get-cost-and-usage", {"profile": "alpha", "start": "2025-02-01", "end": "2025-01-01"}),
    ("aws.budgets.describe-budgets", {"profile": "alpha", "account_id": "12345"}),
])
def test_unknown_commands_extra_flags_and_out_of_range_values_are_refused(production_runner, name, params):
    with pytest.raises(InvalidInput):
        parse_command(name, params)
    assert production_runner.spawn_count == 0


def test_commands_build_argv_arrays_with_regions_and_json_always(production_runner, tmp_path):
    cost = parse_command("aws_finops.cost", {"profiles": ["alpha"], "time_range_days": 30, "tags": {"Team": "Fin Ops"},
                                             "report_types": ["csv"]})
    assert production_runner.build_argv(cost, output_dir=tmp_path)[1:] == [
        "--profiles", "alpha", "--regions", "us-east-1", "--report-name", "aws-finops-cost",
        "--report-type", "json", "csv", "--dir", str(tmp_path), "--time-range", "30", "--tag", "Team=Fin Ops"]
    trend = AwsFinopsTrend(profiles=["alpha"])
    assert "--regions" in production_runner.build_argv(trend, output_dir=tmp_path)
    ce = AwsCeGetCostAndUsage(profile="alpha", start=dt.date(2025, 1, 1), end=dt.date(2025, 2, 1), group_by="SERVICE")
    assert production_runner.build_argv(ce, output_dir=tmp_path)[1:] == [
        "ce", "get-cost-and-usage", "--time-period", "Start=2025-01-01,End=2025-02-01", "--granularity", "MONTHLY",
        "--metrics", "UnblendedCost", "--group-by", "Type=DIMENSION,Key=SERVICE", "--profile", "alpha",
        "--region", "us-east-1", "--output", "json"]


@pytest.mark.parametrize("cls", list(VALID), ids=lambda c: c.name)
def test_no_command_ever_carries_a_forbidden_flag(production_runner, cls, tmp_path):
    argv = production_runner.build_argv(cls.model_validate(VALID[cls]), output_dir=tmp_path)
    assert os.path.isabs(argv[0])
    assert not {a.split("=", 1)[0] for a in argv} & FORBIDDEN_FLAGS
    assert production_runner.spawn_count == 0


def test_the_keyless_sample_profile_is_never_a_users_profile_nor_a_job_parameter():
    from services.jobs import cli_kinds  # the job's parameters are built from the command's fields

    with pytest.raises(InvalidInput):
        parse_command("aws_finops.cost", {"profiles": ["alpha", SAMPLE_PROFILE]})
    assert all(
        "lead_with_sample" not in cli_kinds._job_model(cls).model_fields  # noqa: SLF001 - the job's allow-list
        for cls in COMMANDS.values())
    led = AwsFinopsCost(profiles=["alpha"], lead_with_sample=True)
    assert led.build_args(output_dir=Path("/out"))[:3] == ["--profiles", SAMPLE_PROFILE, "alpha"]
    assert (led.profile_names(), led.keyless_profile_names()) == (("alpha",), (SAMPLE_PROFILE,))

"""A local moto server (AWS APIs in server mode), started once per test session."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.stacks import free_port, stop, wait_for_http


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run `moto_server` on a free local port and return its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    # Its request recorder (off until a test starts it) writes here, not into the current folder.
    env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(log.with_name("recording.jsonl"))}
    process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/moto-api/", timeout=30, process=process, log=log)
    yield url
    stop(process)


@pytest.fixture()
def moto(moto_endpoint: str) -> str:
    """The moto server, reset to empty for this test."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    return moto_endpoint


def start_counting(url: str) -> None:
    """Start moto's request recorder afresh: every request it answers from now on is recorded."""
    requests.post(f"{url}/moto-api/recorder/reset-recording", timeout=10).raise_for_status()
    requests.post(f"{url}/moto-api/recorder/start-recording", timeout=10).raise_for_status()


def counted_requests(url: str) -> Counter[str]:
    """Requests recorded since start_counting, by X-Amz-Target (JSON APIs such as Cost Explorer)
    or by the Action of a query API (STS, EC2); the recorder stops."""
    requests.post(f"{url}/moto-api/recorder/stop-recording", timeout=10).raise_for_status()
    text = requests.get(f"{url}/moto-api/recorder/download-recording", timeout=30).text
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        target = headers.get("x-amz-target")
        if target is None:
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode("utf-8", "replace")
            action = next((p.split("=", 1)[1] for p in body.split("&") if p.startswith("Action=")), "other")
            target = action
        counts[target] += 1
    return counts


#: Cost Explorer's GetCostAndUsage, as its X-Amz-Target header names it.
GET_COST_AND_USAGE = "AWSInsightsIndexService.GetCostAndUsage"

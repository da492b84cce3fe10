"""A local moto server (AWS APIs in server mode), started once per test session."""

from __future__ import annotations

import subprocess
import sys
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
    process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/moto-api/", timeout=30, process=process, log=log)
    yield url
    stop(process)


@pytest.fixture()
def moto(moto_endpoint: str) -> str:
    """The moto server, reset to empty for this test."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    return moto_endpoint

"""Counts the AWS requests of a child the CLI runner started (aws-finops, aws), per service.

The runner puts this folder on the child's PYTHONPATH and names a file in
``FINOPS_REQUEST_COUNTS``; Python imports this module at start-up. When the program imports
``botocore.endpoint``, every HTTP request botocore then sends (retries included; a call refused
before sending, such as one without credentials, is not sent and not counted) adds one to its
service's count, and the counts are written as JSON when the program exits. A program that
never imports botocore pays nothing. It changes nothing else, and a failure here never stops the
program.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

_COUNTS: dict[str, int] = {}


def _count(endpoint: ModuleType) -> None:
    send = endpoint.Endpoint._send

    def counted_send(self: Any, request: Any) -> Any:
        service = str(getattr(self, "_endpoint_prefix", "unknown"))
        _COUNTS[service] = _COUNTS.get(service, 0) + 1
        return send(self, request)

    endpoint.Endpoint._send = counted_send


class _CountOnImport(MetaPathFinder):
    """Patch botocore.endpoint right after it is first imported."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if name != "botocore.endpoint":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                loader = spec.loader
                run = loader.exec_module

                def exec_module(module: ModuleType, run: Any = run) -> None:
                    run(module)
                    with contextlib.suppress(Exception):
                        _count(module)

                loader.exec_module = exec_module  # type: ignore[method-assign]
                return spec
        return None


def _write(path: str) -> None:
    with contextlib.suppress(OSError), open(path, "w", encoding="utf-8") as handle:
        json.dump(_COUNTS, handle)


if os.environ.get("FINOPS_REQUEST_COUNTS"):
    with contextlib.suppress(Exception):  # counting must never break the program it watches
        sys.meta_path.insert(0, _CountOnImport())
        atexit.register(_write, os.environ["FINOPS_REQUEST_COUNTS"])

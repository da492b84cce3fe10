"""Last of the browser tests: the logs every stack wrote over the whole run hold none of its secrets.

The stacks live for the test session, so by now their logs hold sign-ins, profiles saved and tested,
collections, imports and jobs. The embedded default prints its first password once, by design (it
is the demo's way to hand it over), so that password is looked for in the production stack only.
"""

from __future__ import annotations

import pytest

from tests.integration.test_aws_finops import BASE_SECRET
from tests.stack_fixtures import read_log

pytestmark = pytest.mark.e2e

#: Secrets the browser tests type into the product.
TYPED_SECRETS = (BASE_SECRET, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def _secrets(stack) -> list[str]:  # type: ignore[no-untyped-def]
    found = [*TYPED_SECRETS, stack.totp_secret]
    for name in ("SECRET_KEY", "AUDIT_HMAC_KEY"):
        found.append(stack.env.get(name, ""))
    for spec in stack.env.get("ENCRYPTION_KEYS", "").split(","):
        found.append(spec.partition(":")[2])  # the key material, not its id
    if stack.kind == "production":
        found.append(stack.password)
    return [s for s in found if len(s) >= 8]


def test_no_secret_reaches_the_logs_of_a_whole_run(stack):
    log = read_log(stack)
    assert len(log) > 1000, "the stack wrote almost no log: is it the one the tests used?"
    leaked = [s[:4] + "…" for s in _secrets(stack) if s in log]
    assert not leaked, f"secrets in the {stack.kind} stack's logs: {leaked}"

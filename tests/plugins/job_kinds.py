"""Job kinds used only by tests, loaded through the JOB_PLUGINS setting like any deployment's own."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from services.jobs.kinds import JobCancelled, JobContext, JobKind, register_kind


class Steps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(default=5, ge=1, le=1000)
    seconds_per_step: float = Field(default=0.01, ge=0, le=10)
    fail_at: int | None = None
    ce_requests: int = Field(default=0, ge=0)
    profile_ids: list[int] = Field(default_factory=list)


def run_steps(ctx: JobContext) -> dict[str, object]:
    params = Steps.model_validate(ctx.parameters)
    for step in range(1, params.steps + 1):
        if ctx.is_cancelled():
            raise JobCancelled()
        if params.fail_at == step:
            raise RuntimeError(f"step {step} broke")
        time.sleep(params.seconds_per_step)
        ctx.progress(int(step * 100 / params.steps), f"step {step} of {params.steps}")
    ctx.add_result("steps.json", data={"steps": params.steps})
    return {"steps": params.steps}


register_kind(JobKind(name="test.steps", label="Count steps (tests)", roles=("admin", "finance", "engineering"),
                      parameters=Steps, run=run_steps,
                      estimate_ce_requests=lambda p: p.ce_requests,  # type: ignore[attr-defined]
                      profile_ids=lambda p: p.profile_ids))  # type: ignore[attr-defined]


class NoParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")


def run_broken_query(ctx: JobContext) -> dict[str, object]:
    from sqlalchemy import text

    from services import database

    with database.session_scope() as session:
        session.execute(text("SELECT secret_column FROM no_such_table WHERE owner = 'x'"))
    return {}


register_kind(JobKind(name="test.broken_query", label="Run a broken query (tests)", roles=("admin",),
                      parameters=NoParameters, run=run_broken_query))

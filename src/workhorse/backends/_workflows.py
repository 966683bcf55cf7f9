"""What every store does the same way for workflows and unique keys: checking a workflow
before it is inserted, working out the state each part starts in, the wording of the
errors dependents end with, and the bit mask of a unique key's states.

The SQL stores repeat the settling of dependents in a trigger (see their migration
0003); :func:`dependency_error_message` is the wording both triggers spell out too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from workhorse.backends.base import NewJob, NewWorkflow, StoredJobRef
from workhorse.errors import DependencyFailedError, JobNotFoundError, JobStateError
from workhorse.jobs import FINAL_STATES, LIVE_STATES, JobError, JobState, OnDuplicate

STATE_BITS: dict[JobState, int] = {
    JobState.SCHEDULED: 1,
    JobState.QUEUED: 2,
    JobState.BLOCKED: 4,
    JobState.RUNNING: 8,
    JobState.COMPLETED: 16,
    JobState.FAILED: 32,
    JobState.CANCELLED: 64,
}
"""Each state's bit in ``unique_states`` (the unique index of the SQL stores spells the
same numbers out in a CASE)."""

LIVE_MASK = sum(STATE_BITS[state] for state in LIVE_STATES)


@dataclass(frozen=True, slots=True)
class UniqueRule:
    """Where a job holds its unique key (``unique_states`` bits) and what a duplicate does."""

    mask: int = LIVE_MASK
    on_duplicate: OnDuplicate = "return"


DEFAULT_RULE = UniqueRule()


def unique_rule(job: NewJob) -> UniqueRule | None:
    """The rule of a job with a unique key (None without one). ``ValueError`` for
    unique states that leave out a live state."""
    if job.unique_key is None:
        return None
    return UniqueRule(unique_mask(job.unique_states), job.on_duplicate)


_META_KEY = re.compile(r"^\w{1,64}$", re.ASCII)


def unique_mask(states: Collection[JobState]) -> int:
    """The ``unique_states`` bits of ``states``. ``ValueError`` unless every live state is
    in: a job moving into a state that holds its key while another job holds the same
    key would otherwise break the unique index halfway through a claim or an outcome."""
    missing = LIVE_STATES - set(states)
    if missing:
        names = ", ".join(sorted(state.value for state in missing))
        raise ValueError(f"unique states must include every live state; missing {names}")
    return sum(STATE_BITS[JobState(state)] for state in set(states))


def holds_key(state: JobState, mask: int) -> bool:
    """True if a job in ``state`` with ``unique_states`` bits ``mask`` holds its key."""
    return bool(STATE_BITS[state] & mask)


def check_meta_key(key: str) -> str:
    """``key`` if it can name a top-level meta field; ``ValueError`` otherwise."""
    if not _META_KEY.match(key):
        raise ValueError(f"meta key {key!r} must be 1-64 letters, digits or underscores")
    return key


def dependency_error_message(
    root_id: int, root_task: str, root_state: str, via: str | None = None
) -> str:
    """Why a job ends because job ``root_id`` ended ``root_state``: directly (``via`` is
    None), or through ``via`` (``"job 14"``), a job between them that never ran."""
    upstream = f"job {root_id} ({root_task}) ended {root_state}"
    if via is None:
        return f"dependency {upstream}"
    return f"dependency {via} did not run: upstream {upstream}"


def dependency_error(
    root_id: int, root_task: str, root_state: str, via: str | None = None
) -> JobError:
    """The error recorded on a job that ends because of ``root_id``."""
    return JobError(
        type=DependencyFailedError.__name__,
        message=dependency_error_message(root_id, root_task, root_state, via),
    )


def retry_refused(job_id: int, dependency_id: int, state: str) -> JobStateError:
    """The error of retrying a job that still waits for a dependency that did not
    complete: it would run without it."""
    hint = "retry that job first" if state in ("failed", "cancelled") else "retry once it completed"
    return JobStateError(
        f"job {job_id} cannot be retried: it waits for job {dependency_id}, which is "
        f"{state} ({hint})"
    )


def policy_state(on_failure: str) -> JobState:
    """The state a dependent ends in under its workflow's policy."""
    return JobState.CANCELLED if on_failure == "cancel" else JobState.FAILED


def stored_dependencies(workflow: NewWorkflow) -> list[int]:
    """The ids of stored jobs the workflow waits on, ascending (the order to lock them)."""
    return sorted(
        {
            dep.job_id
            for part in workflow.parts
            for dep in part.after
            if isinstance(dep, StoredJobRef)
        }
    )


def check_workflow(workflow: NewWorkflow) -> None:
    """``ValueError`` for a workflow no store should take: no parts, a dependency that is
    not an earlier part, a part with a unique key, an unknown policy."""
    if not workflow.parts:
        raise ValueError("a workflow needs at least one part")
    if workflow.on_failure not in ("fail", "cancel"):
        raise ValueError(f"on_failure must be 'fail' or 'cancel', not {workflow.on_failure!r}")
    for position, part in enumerate(workflow.parts):
        if part.job.unique_key is not None:
            raise ValueError(
                f"part {position} ({part.job.task}) has a unique key: workflow parts "
                "cannot be unique jobs"
            )
        seen: set[int | StoredJobRef] = set()
        for dep in part.after:
            if dep in seen:
                raise ValueError(f"part {position} ({part.job.task}) lists {dep} twice")
            seen.add(dep)
            if isinstance(dep, int) and not 0 <= dep < position:
                raise ValueError(
                    f"part {position} ({part.job.task}) waits on part {dep}: a part can "
                    "only wait on earlier parts"
                )


@dataclass(frozen=True, slots=True)
class PartPlan:
    """How one part starts."""

    blocked: bool
    """True while a dependency is still live."""
    ended: JobState | None = None
    """FAILED or CANCELLED when a stored dependency had already ended badly."""
    error: JobError | None = None
    cause_id: int | None = None
    """The stored job whose end ended this part (it is kept as long as that job)."""
    has_dependents: bool = False


def plan_parts(workflow: NewWorkflow, stored: Mapping[int, tuple[JobState, str]]) -> list[PartPlan]:
    """The start of each part, given the state and task of each stored dependency (read
    under lock by the caller). ``JobNotFoundError`` for a stored dependency that is not
    in ``stored``."""
    check_workflow(workflow)
    depended_on = {dep for part in workflow.parts for dep in part.after if isinstance(dep, int)}
    # Per part: the stored job whose failure reached it, if any.
    doomed: list[tuple[int, str, JobState] | None] = []
    plans: list[PartPlan] = []
    for position, part in enumerate(workflow.parts):
        blocked = False
        cause: tuple[int, str, JobState] | None = None
        direct, via = True, 0
        for dep in part.after:
            if isinstance(dep, StoredJobRef):
                if dep.job_id not in stored:
                    raise JobNotFoundError(
                        f"part {position} ({part.job.task}) waits on job {dep.job_id}, "
                        "which does not exist"
                    )
                state, task = stored[dep.job_id]
                if state in (JobState.FAILED, JobState.CANCELLED):
                    cause = cause or (dep.job_id, task, state)
                elif state not in FINAL_STATES:
                    blocked = True
            else:
                # A new part has not run yet: it holds this one back, unless it ended.
                upstream = doomed[dep]
                if upstream is None:
                    blocked = True
                elif cause is None:
                    cause, direct, via = upstream, False, dep
        doomed.append(cause)
        has_dependents = position in depended_on
        if cause is None:
            plans.append(PartPlan(blocked=blocked, has_dependents=has_dependents))
            continue
        # A part in between has no id yet: it is named by its position.
        error = dependency_error(*cause, via=None if direct else f"part {via}")
        plans.append(
            PartPlan(
                blocked=False,
                ended=policy_state(workflow.on_failure),
                error=error,
                cause_id=cause[0],
                has_dependents=has_dependents,
            )
        )
    return plans

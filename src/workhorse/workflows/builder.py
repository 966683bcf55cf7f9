"""Building workflows: parts that wait for other parts (or for jobs already enqueued),
enqueued together in one atomic write.

Results flow as arguments: a part added with ``inputs="result"`` gets the result of its
one dependency as its first positional argument, ``inputs="results"`` gets the list of
its dependencies' results (in the order of ``after``). :func:`chain` uses the first,
:meth:`Group.then` the second; a part with the default ``inputs="none"`` only waits.
Describe such a part with ``task.partial(...)``: the task's arguments after the first,
type-checked as such. The worker reads the results from the store when the part starts,
so they are never copied into the part's stored arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, get_args

from workhorse._portal import Portal, sync_twin
from workhorse.backends.base import NewJob, NewWorkflow, StoredJobRef, WorkflowPart
from workhorse.handle import Job
from workhorse.jobs import DependencyPolicy
from workhorse.tasks import JobSpec
from workhorse.workflows.handle import ResultShape, WorkflowHandle

if TYPE_CHECKING:
    from workhorse.app import Workhorse

R = TypeVar("R")

Inputs = Literal["none", "result", "results"]
"""What a part receives from the parts it waits for, before its own arguments."""

INPUTS_META = "workflow_inputs"
"""The meta field that tells the worker to pass dependency results (see ``inputs``)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Part(Generic[R]):
    """A call added to a :class:`Workflow`; name it in another part's ``after``."""

    workflow: Workflow
    index: int
    spec: JobSpec[R]


Dependency = Part[Any] | Job[Any]
"""What a part may wait for: an earlier part of its workflow, or a job already enqueued."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    spec: JobSpec[Any]
    after: tuple[Dependency, ...]
    inputs: Inputs


class Workflow:
    """Job calls enqueued together, each waiting for the ones it names::

        wf = Workflow("nightly-report")
        extract = wf.add(fetch.call(day))
        clean = wf.add(normalise.partial(), after=[extract], inputs="result")
        stats = wf.add(summarise.partial(), after=[clean], inputs="result")
        wf.add(publish.partial(), after=[clean, stats], inputs="results")
        handle = await wf.enqueue()

    A part waits (``blocked``) until every part it names has completed. When one fails
    or is cancelled, the parts waiting on it, directly or not, end as ``on_failure``
    says: ``"fail"`` (failed, with a ``DependencyFailedError`` naming the dependency)
    or ``"cancel"``. Parts may not be unique jobs. ``tenant`` sets every part's tenant
    (otherwise the parts must agree on one).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        on_failure: DependencyPolicy = "fail",
        tenant: str | None = None,
    ) -> None:
        if on_failure not in get_args(DependencyPolicy):
            raise ValueError(f"on_failure must be 'fail' or 'cancel', not {on_failure!r}")
        self.name = name
        self.on_failure: DependencyPolicy = on_failure
        self.tenant = tenant
        self._entries: list[_Entry] = []
        self._result_shape: ResultShape = "last"

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} parts={len(self._entries)}>"

    def add(
        self, spec: JobSpec[R], *, after: Iterable[Dependency] = (), inputs: Inputs = "none"
    ) -> Part[R]:
        """Add a call that runs once everything in ``after`` has completed."""
        waits = tuple(after)
        if inputs not in get_args(Inputs):
            raise ValueError(f"inputs must be 'none', 'result' or 'results', not {inputs!r}")
        if inputs == "result" and len(waits) != 1:
            raise ValueError(f'inputs="result" needs exactly one dependency, got {len(waits)}')
        for dep in waits:
            if isinstance(dep, Part) and dep.workflow is not self:
                raise ValueError(f"{dep.spec.task.name} is a part of another workflow")
            if not isinstance(dep, Part | Job):
                raise TypeError(f"after takes parts and jobs, not {type(dep).__name__}")
        if self._entries and spec.task.app is not self._entries[0].spec.task.app:
            raise ValueError("every part of a workflow must belong to the same app")
        self._entries.append(_Entry(spec, waits, inputs))
        return Part(self, len(self._entries) - 1, spec)

    @property
    def parts(self) -> list[JobSpec[Any]]:
        """The calls added so far, in order."""
        return [entry.spec for entry in self._entries]

    @property
    def app(self) -> Workhorse:
        """The app the parts' tasks belong to."""
        if not self._entries:
            raise ValueError("an empty workflow has no app: add a part first")
        return self._entries[0].spec.task.app

    @property
    def _portal(self) -> Portal:
        return self.app._portal

    def to_new_workflow(self) -> NewWorkflow:
        """The rows to insert. Raises ``SerializationError`` for arguments that are not
        JSON, ``ValueError`` for parts of several tenants."""
        jobs = [entry.spec.to_new_job() for entry in self._entries]
        tenant = self.tenant
        if tenant is None:
            tenants = {job.tenant for job in jobs}
            if len(tenants) > 1:
                names = sorted(map(str, tenants))
                raise ValueError(f"the parts of one workflow must share a tenant, got {names}")
            tenant = tenants.pop() if tenants else None
        parts = [
            WorkflowPart(job=_part_job(job, entry.inputs, tenant), after=_refs(entry.after))
            for job, entry in zip(jobs, self._entries, strict=True)
        ]
        return NewWorkflow(parts=parts, name=self.name, on_failure=self.on_failure, tenant=tenant)

    async def enqueue(self, *, connection: Any = None) -> WorkflowHandle:
        """Store every part in one atomic write and return a handle on the workflow.

        ``connection`` (PostgreSQL) joins the caller's open transaction, as in
        ``app.enqueue_many``. In eager mode the parts run at once, in order."""
        app = self.app
        new = self.to_new_workflow()
        store = await app.backend()
        inserted = await store.workflow_insert(new, connection=connection)
        jobs: list[Job[Any]] = [
            Job(app, row.id, entry.spec.task.name)
            for row, entry in zip(inserted.jobs, self._entries, strict=True)
        ]
        if app.is_eager:
            from workhorse.eager import run_eagerly

            await run_eagerly(app, store, jobs)
        else:
            app._count_enqueued([part.job for part in new.parts])
            if connection is None:
                app._wake_local(part.job.queue for part in new.parts)
        return WorkflowHandle(app, inserted.id, jobs, shape=self._result_shape)

    enqueue_sync = sync_twin(enqueue)


class Group(Workflow):
    """Calls that run side by side; :meth:`then` adds a callback that gets all their
    results. Enqueued alone, a group's ``result()`` is the list of its results."""

    def __init__(
        self,
        *specs: JobSpec[Any],
        name: str | None = None,
        on_failure: DependencyPolicy = "fail",
        tenant: str | None = None,
    ) -> None:
        super().__init__(name, on_failure=on_failure, tenant=tenant)
        self._members = [self.add(spec) for spec in specs]
        self._result_shape = "all"

    def then(self, spec: JobSpec[R]) -> Workflow:
        """A workflow of this group followed by ``spec``, which gets the list of the
        group's results (in the group's order) as its first argument."""
        workflow = Workflow(self.name, on_failure=self.on_failure, tenant=self.tenant)
        members = [workflow.add(member.spec) for member in self._members]
        workflow.add(spec, after=members, inputs="results")
        return workflow


def chain(
    *specs: JobSpec[Any],
    name: str | None = None,
    on_failure: DependencyPolicy = "fail",
    tenant: str | None = None,
) -> Workflow:
    """Calls that run one after another, each getting the previous one's result as its
    first argument::

        handle = await chain(fetch.call(url), parse.partial(), store.partial()).enqueue()
        await handle.result()  # what store returned
    """
    workflow = Workflow(name, on_failure=on_failure, tenant=tenant)
    previous: Part[Any] | None = None
    for spec in specs:
        if previous is None:
            previous = workflow.add(spec)
        else:
            previous = workflow.add(spec, after=[previous], inputs="result")
    return workflow


def group(
    *specs: JobSpec[Any],
    name: str | None = None,
    on_failure: DependencyPolicy = "fail",
    tenant: str | None = None,
) -> Group:
    """Calls that run side by side (see :class:`Group`)::

    handle = await group(resize.call(a), resize.call(b)).then(zip_all.partial()).enqueue()
    """
    return Group(*specs, name=name, on_failure=on_failure, tenant=tenant)


def _part_job(job: NewJob, inputs: Inputs, tenant: str | None) -> NewJob:
    if job.unique_key is not None:
        raise ValueError(
            f"task {job.task!r} is unique: workflow parts cannot be unique jobs "
            "(enqueue it on its own and name its job in after=)"
        )
    meta = job.meta if inputs == "none" else {**job.meta, INPUTS_META: inputs}
    return dataclasses.replace(job, tenant=tenant, meta=meta)


def _refs(after: tuple[Dependency, ...]) -> tuple[int | StoredJobRef, ...]:
    return tuple(dep.index if isinstance(dep, Part) else StoredJobRef(dep.id) for dep in after)

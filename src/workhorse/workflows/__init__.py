"""Workflows: jobs that wait for other jobs (chains, groups with a callback, general
graphs), and pipelines whose one job moves through named stages by itself."""

from __future__ import annotations

from workhorse.workflows.builder import Group, Inputs, Part, Workflow, chain, group
from workhorse.workflows.handle import WorkflowHandle
from workhorse.workflows.pipeline import Pipeline, Stage

__all__ = [
    "Group",
    "Inputs",
    "Part",
    "Pipeline",
    "Stage",
    "Workflow",
    "WorkflowHandle",
    "chain",
    "group",
]

"""Large refactors: one migration cut into dependency-ordered, PR-sized subtasks."""

from corral.workflows.refactor.plan import RefactorPlan, Subtask, make_plan
from corral.workflows.refactor.spec import RefactorSpec, load_spec

__all__ = ["RefactorPlan", "RefactorSpec", "Subtask", "load_spec", "make_plan"]

"""Task-name checking shared by the labelled family modules (families → CG pipeline stage)."""

from __future__ import annotations


def check_task(family: str, tasks: tuple[str, ...], task: str | None) -> str:
    """``task`` if it is one of ``tasks`` (``None`` → the first); ``ValueError`` naming it otherwise."""
    if task is None:
        return tasks[0]
    if task not in tasks:
        raise ValueError(f"{family}: unknown task {task!r}; known: {', '.join(tasks)}")
    return task

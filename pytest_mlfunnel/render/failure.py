"""The text pytest shows under a criterion that did not pass."""

from __future__ import annotations

from pytest_mlfunnel.outcome import Outcome
from pytest_mlfunnel.render.escape import controls
from pytest_mlfunnel.secrets import redact


def describe_failure(outcome: Outcome, where: str, name: str) -> str:
    """The message, then where the criterion is configured, then its details::

        f1 0.71, expected >= 0.9
          (failed · pyproject.toml:12 [tool.mlfunnel.problem.goal] f1)
    """
    lines = [outcome.message or outcome.status,
             f"  ({outcome.status} · {where} {name})"]
    lines += [f"    {line}" for line in outcome.details]
    return controls(redact("\n".join(lines)))

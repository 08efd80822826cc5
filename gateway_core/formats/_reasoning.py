"""Anthropic ``thinking`` / ``output_config.effort`` -> an OpenAI-style reasoning effort (protocols §7.4).

Shared by every OpenAI-style upstream format (Responses ``reasoning.effort``, OpenRouter
``reasoning.effort``). The thresholds follow CLIProxyAPI's budget conversion; peers differ (LiteLLM
uses 1024/2048/4096), so this table is our decision, not an upstream fact.
"""

from __future__ import annotations

from gateway_core.models import Effort, Request

# Inclusive upper bounds of a thinking budget for each effort; above the last one: xhigh.
_BUDGET_TO_EFFORT: tuple[tuple[int, Effort], ...] = (
    (1024, "low"),
    (8192, "medium"),
    (24576, "high"),
)

# Anthropic's `max` has no OpenAI counterpart; `xhigh` is the highest OpenAI effort.
_EFFORT_ALIASES: dict[Effort, Effort] = {"max": "xhigh"}


def effort_for_budget(budget_tokens: int) -> Effort:
    """The effort that matches an ``enabled`` thinking budget."""
    for upper_bound, effort in _BUDGET_TO_EFFORT:
        if budget_tokens <= upper_bound:
            return effort
    return "xhigh"


def reasoning_effort(request: Request, default: Effort | None = None) -> Effort | None:
    """The reasoning effort to ask an OpenAI-style upstream for.

    ``disabled`` thinking gives ``"none"`` (the provider raises it to the lowest its model accepts);
    no thinking and no explicit effort gives the lane ``default``.
    """
    thinking = request.thinking
    if thinking is not None and thinking.type == "disabled":
        return "none"
    if thinking is not None and thinking.type == "enabled" and thinking.budget_tokens is not None:
        return effort_for_budget(thinking.budget_tokens)
    effort = request.effort if request.effort is not None else default
    if effort is None:
        return None
    return _EFFORT_ALIASES.get(effort, effort)

"""Model-layer errors that are finer than the domain tree, and shared small helpers.

ContextWindowExceeded lives here, not in `corral.domain`, because only the gateway's
fallback logic cares about it; everyone else may treat it as a plain ProviderError.
"""

from __future__ import annotations

import re

from corral.domain import ProviderError, Usage

__all__ = ["ContextWindowExceeded", "cost_usd", "looks_like_context_overflow"]


class ContextWindowExceeded(ProviderError):
    """The prompt did not fit the model's context window (retrying as-is cannot help)."""


_OVERFLOW = re.compile(
    r"context[_ ]length[_ ]exceeded|maximum context length|context window|"
    r"prompt is too long|too many tokens|input is too long|exceeds the context",
    re.IGNORECASE,
)


def looks_like_context_overflow(text: str) -> bool:
    """Providers word this differently; these phrases cover OpenAI, Anthropic, vLLM."""
    return bool(_OVERFLOW.search(text))


def cost_usd(usage: Usage, price_in_per_mtok: float, price_out_per_mtok: float) -> float:
    """Dollar cost of one call at per-million-token prices."""
    return (
        usage.input_tokens * price_in_per_mtok + usage.output_tokens * price_out_per_mtok
    ) / 1_000_000

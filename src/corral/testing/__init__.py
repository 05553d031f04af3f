"""Shipped fakes, so tests (ours and users') exercise real code paths without providers.

`FakeProvider` is a real OpenAI-compatible HTTP server; `ScriptedModel` and
`ReplayModel` (re-exported from `corral.models`) stand in for a model directly.
"""

from corral.models.replay import ReplayModel
from corral.models.scripted import ScriptedModel
from corral.testing.fake_provider import (
    FakeProvider,
    FakeStats,
    Fault,
    RawReply,
    RecordedRequest,
    Reply,
    exponential,
    run_fake_provider,
    uniform,
)

__all__ = [
    "FakeProvider",
    "FakeStats",
    "Fault",
    "RawReply",
    "RecordedRequest",
    "ReplayModel",
    "Reply",
    "ScriptedModel",
    "exponential",
    "run_fake_provider",
    "uniform",
]

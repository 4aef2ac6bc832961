"""A local OpenAI API stand-in: a real HTTP server on 127.0.0.1 with fault injection and call recording."""

from lab.openai_standin.faults import Fault, FaultPlan, insufficient_quota, rate_limited, server_error
from lab.openai_standin.server import CallRecord, OpenAIStandIn
from lab.openai_standin.state import ManualClock, OrganizationState

__all__ = [
    "CallRecord",
    "Fault",
    "FaultPlan",
    "ManualClock",
    "OpenAIStandIn",
    "OrganizationState",
    "insufficient_quota",
    "rate_limited",
    "server_error",
]

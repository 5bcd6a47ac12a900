"""Python client of the mlx-batch-server gRPC API (mlxserve.v1).

`Client` wraps the generated stub (in mlxserve.v1) with plain Python inputs; `Session` multiplexes
many requests over one Generate stream; `RequestError` is raised for every refused or failed call.
Structured output is a sampling keyword (json_schema, regex, choice, grammar, json_object); tools
are keywords of chat requests, and the model's calls come back in `Completion.tool_calls`.
"""

from mlxserve.client import Client
from mlxserve.errors import RequestError
from mlxserve.inputs import ChatMessageLike, PromptLike, Sampling, build_prompt, build_sampling
from mlxserve.session import Completion, Event, Generation, Session, collect
from mlxserve.tools import ToolCallLike, ToolChoiceLike, ToolLike, parse_arguments, tool_message

__all__ = [
    "ChatMessageLike",
    "Client",
    "Completion",
    "Event",
    "Generation",
    "PromptLike",
    "RequestError",
    "Sampling",
    "Session",
    "ToolCallLike",
    "ToolChoiceLike",
    "ToolLike",
    "build_prompt",
    "build_sampling",
    "collect",
    "parse_arguments",
    "tool_message",
]

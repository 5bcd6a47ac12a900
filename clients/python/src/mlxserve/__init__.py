"""Python client of the mlx-batch-server gRPC API (mlxserve.v1).

`Client` wraps the generated stub (in mlxserve.v1) with plain Python inputs; `Session` multiplexes
many requests over one Generate stream; `RequestError` is raised for every refused or failed call.
"""

from mlxserve.client import Client
from mlxserve.errors import RequestError
from mlxserve.inputs import ChatMessageLike, PromptLike, Sampling, build_prompt, build_sampling
from mlxserve.session import Completion, Event, Generation, Session, collect

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
    "build_prompt",
    "build_sampling",
    "collect",
]

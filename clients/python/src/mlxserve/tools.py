"""Tool calling: the functions a chat prompt offers the model, how it may call them, and the calls it
makes, which come back on GenerationDelta.tool_calls and Completion.tool_calls and go back into the
chat as an assistant message followed by "tool" messages with the results."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Union

from mlxserve.v1 import prompt_pb2

ToolLike = Union[Mapping[str, Any], prompt_pb2.Tool]
"""A function the model may call: ``{"name": ..., "description": ..., "parameters": ...}`` with
parameters a JSON schema (a dict, or JSON text; default any object), OpenAI's
``{"type": "function", "function": {...}}``, or a Tool message."""

ToolChoiceLike = Union[str, Mapping[str, Any], prompt_pb2.ToolChoice]
"""Whether and which tool the model must call: ``"auto"`` (the default when tools are given),
``"none"``, ``"required"``, ``{"function": name}`` (OpenAI's
``{"type": "function", "function": {"name": name}}`` too), or a ToolChoice message."""

ToolCallLike = Union[Mapping[str, Any], prompt_pb2.ToolCall]
"""A call of a tool, for an assistant message: ``{"id": ..., "name": ..., "arguments": ...}`` with
arguments as JSON text or a dict, OpenAI's ``{"id": ..., "function": {"name": ..., "arguments": ...}}``,
or a ToolCall message (as Completion.tool_calls has them)."""

_MODES = {
    "auto": prompt_pb2.TOOL_CHOICE_MODE_AUTO,
    "none": prompt_pb2.TOOL_CHOICE_MODE_NONE,
    "required": prompt_pb2.TOOL_CHOICE_MODE_REQUIRED,
}


def parse_arguments(call: prompt_pb2.ToolCall) -> dict[str, Any]:
    """The arguments of a call, parsed from their JSON text.

    Raises:
        ValueError: When they are not a JSON object (json.JSONDecodeError is a ValueError).
    """
    arguments = json.loads(call.arguments)
    if not isinstance(arguments, dict):
        raise ValueError(f"the arguments of call {call.id!r} are not a JSON object: {call.arguments}")
    return arguments


def tool_message(call: prompt_pb2.ToolCall, result: object) -> dict[str, str]:
    """The "tool" chat message that answers a call with its result (anything but a str is sent
    as JSON)."""
    content = result if isinstance(result, str) else json.dumps(result)
    return {"role": "tool", "content": content, "tool_call_id": call.id, "name": call.name}


def build_tool(tool: ToolLike, where: str = "tool") -> prompt_pb2.Tool:
    if isinstance(tool, prompt_pb2.Tool):
        return tool
    if not isinstance(tool, Mapping):
        raise TypeError(f"{where} must be a dict or a Tool, got {type(tool).__name__}")
    function = tool.get("function")
    if isinstance(function, Mapping):  # OpenAI's {"type": "function", "function": {...}}
        tool, where = function, f"{where}.function"
    name, description, parameters = tool.get("name"), tool.get("description", ""), tool.get("parameters")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name must be a non-empty string")
    if not isinstance(description, str):
        raise TypeError(f"{where}.description must be a string, got {type(description).__name__}")
    return prompt_pb2.Tool(name=name, description=description, parameters=_json_text(parameters, f"{where}.parameters"))


def build_tool_choice(choice: ToolChoiceLike) -> prompt_pb2.ToolChoice:
    if isinstance(choice, prompt_pb2.ToolChoice):
        return choice
    if isinstance(choice, str):
        if choice not in _MODES:
            raise ValueError(f"tool_choice must be 'auto', 'none', 'required' or {{'function': name}}, got {choice!r}")
        return prompt_pb2.ToolChoice(mode=_MODES[choice])
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping):  # OpenAI's {"type": "function", "function": {"name": ...}}
            function = function.get("name")
        if isinstance(function, str) and function:
            return prompt_pb2.ToolChoice(function=function)
    raise ValueError(f"tool_choice must be 'auto', 'none', 'required' or {{'function': name}}, got {choice!r}")


def build_tool_call(call: ToolCallLike, where: str = "tool_call") -> prompt_pb2.ToolCall:
    if isinstance(call, prompt_pb2.ToolCall):
        return call
    if not isinstance(call, Mapping):
        raise TypeError(f"{where} must be a dict or a ToolCall, got {type(call).__name__}")
    function = call.get("function")
    fields = function if isinstance(function, Mapping) else call  # OpenAI's {"id", "function": {...}}
    call_id, name = call.get("id", ""), fields.get("name")
    if not isinstance(call_id, str):
        raise TypeError(f"{where}.id must be a string, got {type(call_id).__name__}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name must be a non-empty string")
    arguments = _json_text(fields.get("arguments"), f"{where}.arguments") or "{}"
    return prompt_pb2.ToolCall(id=call_id, name=name, arguments=arguments)


def _json_text(value: object, where: str) -> str:
    """JSON text as is, a dict (or list) serialized; None is empty (the server's default)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list)):
        return json.dumps(dict(value) if isinstance(value, Mapping) else value)
    raise TypeError(f"{where} must be a dict or JSON text, got {type(value).__name__}")

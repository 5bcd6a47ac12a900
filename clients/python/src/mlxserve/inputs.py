"""Turns plain Python values into the request messages: prompts (text, chat messages or token ids,
with the tools a chat offers) and sampling parameters given as keyword arguments."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, TypeGuard, Union, cast

from mlxserve.tools import ToolChoiceLike, ToolLike, build_tool, build_tool_call, build_tool_choice
from mlxserve.v1 import prompt_pb2, sampling_pb2

ChatMessageLike = Union[Mapping[str, Any], tuple[str, str], prompt_pb2.ChatMessage]
"""One chat turn: ``{"role": ..., "content": ...}``, a ``(role, content)`` pair or a ChatMessage. A
dict may also have ``tool_calls`` (an assistant turn's calls, see ToolCallLike; content may then be
left out) and, for a "tool" message, ``tool_call_id`` and ``name`` (see tool_message)."""

PromptLike = Union[str, Sequence[int], Sequence[ChatMessageLike], prompt_pb2.Prompt]
"""A prompt: raw text, token ids, chat messages, or a ready Prompt message (see build_prompt)."""


class Sampling(TypedDict, total=False):
    """The sampling parameters, as keyword arguments; see SamplingParams in sampling.proto for
    ranges and defaults. A parameter left out (or given as None) takes the server's default."""

    temperature: float | None
    top_p: float | None
    top_k: int | None
    min_p: float | None
    seed: int | None
    repetition_penalty: float | None
    presence_penalty: float | None
    frequency_penalty: float | None
    logit_bias: Mapping[int, float] | None
    max_tokens: int | None
    stop: Sequence[str] | None
    stop_token_ids: Sequence[int] | None
    ignore_eos: bool | None
    logprobs: bool | None
    top_logprobs: int | None
    # Structured output: at most one of these constrains the output to a format.
    json_schema: Mapping[str, Any] | str | None  # a JSON schema (a dict, or JSON text) the output is an instance of
    regex: str | None  # a regular expression the whole output matches
    choice: Sequence[str] | None  # the output is exactly one of these strings
    grammar: str | None  # an EBNF grammar (XGrammar's dialect, as GBNF: `root ::= ...`)
    json_object: bool | None  # True: any JSON object (OpenAI's response_format={"type": "json_object"})


SAMPLING_FIELDS = frozenset(Sampling.__annotations__)
STRUCTURED_OUTPUT_FIELDS = ("json_schema", "regex", "choice", "grammar", "json_object")


def build_sampling(sampling: Mapping[str, object]) -> sampling_pb2.SamplingParams:
    """SamplingParams from keyword arguments.

    Raises:
        TypeError: For an unknown name (naming it) or a structured output of the wrong type.
        ValueError: For more than one structured output format.
    """
    unknown = sorted(set(sampling) - SAMPLING_FIELDS)
    if unknown:
        raise TypeError(f"unknown sampling parameter {unknown[0]!r}; known: {', '.join(sorted(SAMPLING_FIELDS))}")
    given = {name: value for name, value in sampling.items() if value is not None}
    formats = {name: given.pop(name) for name in STRUCTURED_OUTPUT_FIELDS if name in given}
    if formats.get("json_object") is False:
        del formats["json_object"]
    if len(formats) > 1:
        raise ValueError(f"give at most one structured output format, got {' and '.join(formats)}")
    params = sampling_pb2.SamplingParams(**cast(dict[str, Any], given))
    for name, value in formats.items():
        _set_structured_output(params, name, value)
    return params


def _set_structured_output(params: sampling_pb2.SamplingParams, name: str, value: object) -> None:
    if name == "json_schema":
        if isinstance(value, Mapping):
            value = json.dumps(dict(value))
        if not isinstance(value, str):
            raise TypeError(f"json_schema must be a dict or JSON text, got {type(value).__name__}")
        params.json_schema = value
    elif name == "choice":
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise TypeError(f"choice must be a list of strings, got {type(value).__name__}")
        params.choice.choices.extend(value)
    elif name == "json_object":
        params.json_object.SetInParent()
    else:  # regex, grammar
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
        setattr(params, name, value)


def build_prompt(
    prompt: PromptLike,
    *,
    add_special_tokens: bool | None = None,
    add_generation_prompt: bool | None = None,
    tools: Sequence[ToolLike] | None = None,
    tool_choice: ToolChoiceLike | None = None,
    parallel_tool_calls: bool | None = None,
) -> prompt_pb2.Prompt:
    """A Prompt message from text, token ids or chat messages.

    Args:
        prompt: A str (raw text), a sequence of ints (token ids), a sequence of chat messages
            (see ChatMessageLike), or a Prompt message (copied).
        add_special_tokens: For text: let the tokenizer add its special tokens (server default true).
        add_generation_prompt: For chat: end with the opening of an assistant turn (server
            default true).
        tools: For chat: functions the model may call (see ToolLike). Its calls come back as
            tool_calls and the generation finishes with FINISH_REASON_TOOL_CALLS.
        tool_choice: For chat: "auto" (default with tools), "none", "required" or
            {"function": name} (see ToolChoiceLike).
        parallel_tool_calls: For chat: let the model call several tools in one answer (server
            default false).

    Raises:
        ValueError: For an empty list (neither token ids nor messages), a message without a role,
            a chat option for a prompt that is not chat, or a malformed tool or tool choice.
        TypeError: For anything else that is not one of the forms above.
    """
    message = _prompt_input(prompt)
    if add_special_tokens is not None:
        message.add_special_tokens = add_special_tokens
    chat_options = {
        "add_generation_prompt": add_generation_prompt,
        "tools": tools,
        "tool_choice": tool_choice,
        "parallel_tool_calls": parallel_tool_calls,
    }
    for name, value in chat_options.items():
        if value is not None and message.WhichOneof("input") != "chat":
            raise ValueError(f"{name} applies to chat messages only")
    if add_generation_prompt is not None:
        message.chat.add_generation_prompt = add_generation_prompt
    if tools is not None:
        if isinstance(tools, Mapping) or not isinstance(tools, Sequence):
            raise TypeError(f"tools must be a list, got {type(tools).__name__}")
        message.chat.tools.extend(build_tool(tool, f"tools[{index}]") for index, tool in enumerate(tools))
    if tool_choice is not None:
        message.chat.tool_choice.CopyFrom(build_tool_choice(tool_choice))
    if parallel_tool_calls is not None:
        message.chat.parallel_tool_calls = parallel_tool_calls
    return message


def _prompt_input(prompt: PromptLike) -> prompt_pb2.Prompt:
    if isinstance(prompt, prompt_pb2.Prompt):
        copy = prompt_pb2.Prompt()
        copy.CopyFrom(prompt)
        return copy
    if isinstance(prompt, str):
        return prompt_pb2.Prompt(text=prompt)
    if isinstance(prompt, (bytes, Mapping)) or not isinstance(prompt, Sequence):
        raise TypeError(f"prompt must be text, token ids or chat messages, got {type(prompt).__name__}")
    if len(prompt) == 0:
        raise ValueError("prompt is an empty list: give at least one token id or chat message")
    if _is_token_ids(prompt):
        return prompt_pb2.Prompt(tokens=prompt_pb2.TokenIds(ids=prompt))
    messages = [_chat_message(item, index) for index, item in enumerate(prompt)]
    return prompt_pb2.Prompt(chat=prompt_pb2.ChatMessages(messages=messages))


def _is_token_ids(items: Sequence[object]) -> TypeGuard[Sequence[int]]:
    return all(isinstance(item, int) and not isinstance(item, bool) for item in items)


def _chat_message(item: object, index: int) -> prompt_pb2.ChatMessage:
    if isinstance(item, prompt_pb2.ChatMessage):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        item = {"role": item[0], "content": item[1]}
    if not isinstance(item, Mapping):
        raise TypeError(
            f"prompt[{index}] must be a chat message (a dict with role and content, or a (role, content) pair)"
            f" or every item a token id, got {type(item).__name__}"
        )
    where = f"prompt[{index}]"
    role, content, tool_calls = item.get("role"), item.get("content"), item.get("tool_calls")
    if not isinstance(role, str) or not role:
        raise ValueError(f"{where}.role must be a non-empty string")
    if content is None and tool_calls:
        content = ""  # an assistant turn that only calls tools
    if not isinstance(content, str):
        raise TypeError(f"{where}.content must be a string, got {type(content).__name__}")
    message = prompt_pb2.ChatMessage(role=role, content=content)
    if tool_calls:
        if isinstance(tool_calls, Mapping) or not isinstance(tool_calls, Sequence):
            raise TypeError(f"{where}.tool_calls must be a list, got {type(tool_calls).__name__}")
        message.tool_calls.extend(build_tool_call(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(tool_calls))
    for name in ("tool_call_id", "name"):
        value = item.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(f"{where}.{name} must be a string, got {type(value).__name__}")
        setattr(message, name, value)
    return message

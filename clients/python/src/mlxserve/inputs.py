"""Turns plain Python values into the request messages: prompts (text, chat messages or token ids)
and sampling parameters given as keyword arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, TypeGuard, Union, cast

from mlxserve.v1 import prompt_pb2, sampling_pb2

ChatMessageLike = Union[Mapping[str, str], tuple[str, str], prompt_pb2.ChatMessage]
"""One chat turn: ``{"role": ..., "content": ...}``, a ``(role, content)`` pair or a ChatMessage."""

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


SAMPLING_FIELDS = frozenset(Sampling.__annotations__)


def build_sampling(sampling: Mapping[str, object]) -> sampling_pb2.SamplingParams:
    """SamplingParams from keyword arguments; an unknown name raises TypeError naming it."""
    unknown = sorted(set(sampling) - SAMPLING_FIELDS)
    if unknown:
        raise TypeError(f"unknown sampling parameter {unknown[0]!r}; known: {', '.join(sorted(SAMPLING_FIELDS))}")
    given = {name: value for name, value in sampling.items() if value is not None}
    return sampling_pb2.SamplingParams(**cast(dict[str, Any], given))


def build_prompt(
    prompt: PromptLike,
    *,
    add_special_tokens: bool | None = None,
    add_generation_prompt: bool | None = None,
) -> prompt_pb2.Prompt:
    """A Prompt message from text, token ids or chat messages.

    Args:
        prompt: A str (raw text), a sequence of ints (token ids), a sequence of chat messages
            (dicts with "role" and "content", (role, content) pairs or ChatMessage messages), or a
            Prompt message (copied).
        add_special_tokens: For text: let the tokenizer add its special tokens (server default true).
        add_generation_prompt: For chat: end with the opening of an assistant turn (server
            default true).

    Raises:
        ValueError: For an empty list (neither token ids nor messages) or a message without a role.
        TypeError: For anything else that is not one of the forms above.
    """
    message = _prompt_input(prompt)
    if add_special_tokens is not None:
        message.add_special_tokens = add_special_tokens
    if add_generation_prompt is not None:
        if message.WhichOneof("input") != "chat":
            raise ValueError("add_generation_prompt applies to chat messages only")
        message.chat.add_generation_prompt = add_generation_prompt
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
    if isinstance(item, Mapping):
        role, content = item.get("role"), item.get("content")
    elif isinstance(item, tuple) and len(item) == 2:
        role, content = item
    else:
        raise TypeError(
            f"prompt[{index}] must be a chat message (a dict with role and content, or a (role, content) pair)"
            f" or every item a token id, got {type(item).__name__}"
        )
    if not isinstance(role, str) or not role:
        raise ValueError(f"prompt[{index}].role must be a non-empty string")
    if not isinstance(content, str):
        raise TypeError(f"prompt[{index}].content must be a string, got {type(content).__name__}")
    return prompt_pb2.ChatMessage(role=role, content=content)

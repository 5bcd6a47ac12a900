"""The OpenAI-compatible API through the official OpenAI Python SDK: answers and streams in
OpenAI's shapes, n, stop, logprobs, usage with cached tokens, structured output parsed into a
pydantic model, a tool-call round trip (streamed and not), errors, unknown fields in extra_body
ignored, a stream closed early freeing its engine slot, and a LoRA adapter loaded at run time and
named as the model."""

import json
import time
from pathlib import Path
from typing import Annotated, Literal

import openai
import pytest
from pydantic import BaseModel, Field

USER = [{"role": "user", "content": "Hello from Python"}]


def test_models(client, model):
    models = client.models.list()
    assert [m.id for m in models.data] == [model]
    assert models.data[0].object == "model"
    assert client.models.retrieve(model).id == model


def test_chat_completion_shape(client, model):
    r = client.chat.completions.create(model=model, messages=USER, max_tokens=5, temperature=0)
    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert r.model == model
    assert r.system_fingerprint.startswith("fp_")
    choice = r.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens_details.cached_tokens >= 0


def test_stream_matches_answer_and_reports_usage(client, model):
    args = dict(model=model, messages=USER, max_tokens=8, temperature=0, extra_body={"ignore_eos": True})
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 8
    assert all(c.usage is None for c in chunks[:-1])


def test_n_choices(client, model):
    r = client.chat.completions.create(model=model, messages=USER, max_tokens=4, n=2, seed=7)
    assert [c.index for c in r.choices] == [0, 1]
    again = client.chat.completions.create(model=model, messages=USER, max_tokens=4, n=2, seed=7)
    assert [c.message.content for c in again.choices] == [c.message.content for c in r.choices]


def test_stop(client, model):
    args = dict(model=model, messages=USER, max_tokens=20, temperature=0, extra_body={"ignore_eos": True})
    free = client.chat.completions.create(**args).choices[0].message.content
    at = next(i for i, ch in enumerate(free) if i >= 2 and " " <= ch <= "~")
    stop = free[at]
    r = client.chat.completions.create(**args, stop=[stop])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == free[: free.index(stop)]


def test_logprobs(client, model):
    r = client.chat.completions.create(
        model=model, messages=USER, max_tokens=4, temperature=0, logprobs=True, top_logprobs=2, extra_body={"ignore_eos": True}
    )
    content = r.choices[0].logprobs.content
    assert len(content) == 4
    for entry in content:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 2
        assert entry.top_logprobs[0].token == entry.token


def test_completions_prompt_list(client, model):
    r = client.completions.create(model=model, prompt=["one", "two"], max_tokens=3, temperature=0, logprobs=1)
    assert r.object == "text_completion"
    assert [c.index for c in r.choices] == [0, 1]
    assert len(r.choices[0].logprobs.tokens) == len(r.choices[0].logprobs.token_logprobs)


def test_cached_tokens(client, model):
    messages = [{"role": "user", "content": "cache me " * 20 + str(time.time())}]
    first = client.chat.completions.create(model=model, messages=messages, max_tokens=1)
    second = client.chat.completions.create(model=model, messages=messages, max_tokens=1)
    assert second.usage.prompt_tokens_details.cached_tokens > first.usage.prompt_tokens_details.cached_tokens


def test_bad_parameter_is_a_400_naming_it(client, model):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=USER, top_p=1.5)
    assert e.value.status_code == 400
    assert e.value.body["param"] == "top_p"
    assert e.value.body["type"] == "invalid_request_error"

    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=USER, response_format={"type": "xml"})
    assert e.value.body["param"] == "response_format"


class Pet(BaseModel):
    # ASCII patterns bound the strings: the tiny model's tokens are single bytes, and XGrammar takes
    # some byte sequences that are not UTF-8 for one character (the text then shows several U+FFFD).
    name: str = Field(pattern=r"^[A-Z][a-z]{0,11}$")
    kind: Literal["cat", "dog", "fish"]
    age: int = Field(ge=0, le=30)
    tags: list[Annotated[str, Field(pattern=r"^[a-z]{1,8}$")]] = Field(max_length=2)


def test_parse_into_a_pydantic_model(client, model):
    args = dict(model=model, messages=[{"role": "user", "content": "Describe a pet."}], response_format=Pet, max_tokens=200)
    r = client.chat.completions.parse(**args, temperature=0)
    message = r.choices[0].message
    assert r.choices[0].finish_reason == "stop"
    assert message.refusal is None
    assert isinstance(message.parsed, Pet)
    assert message.parsed == Pet.model_validate_json(message.content)
    assert message.content.startswith('{"name": "')  # compact JSON in the schema's order

    sampled = client.chat.completions.parse(**args, temperature=1, n=3, seed=5)
    assert [c.index for c in sampled.choices] == [0, 1, 2]
    assert all(isinstance(c.message.parsed, Pet) for c in sampled.choices)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "pattern": "^[A-Za-z ]{1,12}$"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}


def _streamed_calls(stream):
    """Tool calls assembled from delta.tool_calls chunks, as OpenAI's stream sends them, and the finish reason."""
    calls, finish = {}, None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for d in choice.delta.tool_calls or []:
            call = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = call["id"] or d.id
            call["name"] = call["name"] or (d.function.name if d.function else None)
            call["arguments"] += (d.function.arguments or "") if d.function else ""
        finish = choice.finish_reason or finish
    return [calls[i] for i in sorted(calls)], finish


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(client, model, stream):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    args = dict(model=model, tools=[WEATHER_TOOL], tool_choice="required", max_tokens=120, temperature=0)
    if stream:
        calls, finish = _streamed_calls(client.chat.completions.create(messages=messages, stream=True, **args))
        assert finish == "tool_calls"
        assert len(calls) == 1
        call_id, name, arguments = calls[0]["id"], calls[0]["name"], calls[0]["arguments"]
        assistant = {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]}
    else:
        r = client.chat.completions.create(messages=messages, **args)
        assert r.choices[0].finish_reason == "tool_calls"
        assert r.choices[0].message.content is None
        call = r.choices[0].message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        assistant = r.choices[0].message
    assert call_id.startswith("call_")
    assert name == "get_weather"
    parsed = json.loads(arguments)
    assert set(parsed) == {"city", "unit"} and parsed["unit"] in ("celsius", "fahrenheit")

    messages += [assistant, {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"temperature": 21})}]
    follow = dict(model=model, messages=messages, tools=[WEATHER_TOOL], max_tokens=16, temperature=0)
    if stream:
        chunks = list(client.chat.completions.create(**follow, stream=True, stream_options={"include_usage": True}))
        assert chunks[-1].usage.prompt_tokens > 0
        assert any(c.choices and c.choices[0].finish_reason for c in chunks)
    else:
        answer = client.chat.completions.create(**follow)
        assert answer.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_unknown_fields_in_extra_body_are_ignored(client, model):
    """Vendor extensions of other servers (vLLM's chat_template_kwargs, OpenRouter's top_a) are
    accepted and ignored; a known field the server does not implement is still a 400 naming it."""
    extra = {"chat_template_kwargs": {"enable_thinking": False}, "top_a": 0.2, "some_future_field": [1]}
    r = client.chat.completions.create(model=model, messages=USER, max_tokens=3, extra_body=extra)
    assert len(r.choices) == 1
    c = client.completions.create(model=model, prompt="Hi", max_tokens=3, extra_body={"tfs_z": 1.0, "mirostat": 0})
    assert len(c.choices) == 1
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=USER, extra_body={"reasoning_effort": "high"})
    assert e.value.body["param"] == "reasoning_effort"


def test_unknown_model_is_a_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=USER)
    assert e.value.body["code"] == "model_not_found"


def test_closing_a_stream_frees_its_slot(client, model, health):
    stream = client.chat.completions.create(model=model, messages=USER, stream=True, extra_body={"ignore_eos": True})
    received = 0
    for chunk in stream:
        received += 1
        if received == 3:
            break
    assert health()["running_requests"] == 1
    stream.close()
    for _ in range(150):
        if health()["running_requests"] == 0:
            break
        time.sleep(0.02)
    assert health()["running_requests"] == 0


def test_health(health):
    assert health()["status"] == "ready"


def test_lora_adapter_selected_by_model_name(client, model):
    """vLLM's runtime LoRA routes through the SDK's own post(), then the adapter's name as `model`."""
    path = str(Path(__file__).resolve().parents[2] / "test/fixtures/lora/peft")
    loaded = client.post("/load_lora_adapter", body={"lora_name": "sdk-lora", "lora_path": path}, cast_to=str)
    assert loaded == "Success: LoRA adapter 'sdk-lora' added successfully."
    try:
        listed = {m.id: m for m in client.models.list().data}
        assert listed["sdk-lora"].parent == model
        assert listed["sdk-lora"].root == path
        args = dict(messages=USER, max_tokens=6, temperature=0, extra_body={"ignore_eos": True})
        answer = client.chat.completions.create(model="sdk-lora", **args)
        assert answer.model == "sdk-lora"
        assert client.chat.completions.create(model="sdk-lora", **args).choices[0].message.content == answer.choices[0].message.content
        chunks = list(client.chat.completions.create(model="sdk-lora", stream=True, **args))
        assert {c.model for c in chunks} == {"sdk-lora"}
    finally:
        removed = client.post("/unload_lora_adapter", body={"lora_name": "sdk-lora"}, cast_to=str)
    assert removed == "Success: LoRA adapter 'sdk-lora' removed successfully."
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="sdk-lora", messages=USER)
    assert e.value.body["code"] == "model_not_found"

"""Live tests of the Python client against the project's test server (a tiny random-weight model):
requests multiplexed on one Generate stream, cancel, Tokenize, refused requests, structured output
and tool calls."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from mlxserve import Client, Event, Generation, RequestError, Sampling, build_prompt, parse_arguments, tool_message
from mlxserve.v1 import generation_pb2, generation_service_pb2, prompt_pb2

from conftest import REPO_ROOT, LiveServer

LENGTH = generation_pb2.FINISH_REASON_LENGTH
CANCELLED = generation_pb2.FINISH_REASON_CANCELLED
STOP = generation_pb2.FINISH_REASON_STOP
TOOL_CALLS = generation_pb2.FINISH_REASON_TOOL_CALLS


def fixed_length(max_tokens: int) -> Sampling:
    """Greedy and past end-of-sequence tokens, so the request makes exactly max_tokens tokens."""
    return {"temperature": 0.0, "ignore_eos": True, "max_tokens": max_tokens}


CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]


def read_all(generation: Generation) -> list[Event]:
    events = list(generation)
    assert isinstance(events[0], generation_pb2.GenerationStarted), events[0]
    assert isinstance(events[-1], generation_pb2.GenerationFinished), events[-1]
    assert all(isinstance(event, generation_pb2.GenerationDelta) for event in events[1:-1])
    return events


def delta_token_ids(events: Sequence[object]) -> list[int]:
    return [t for e in events if isinstance(e, generation_pb2.GenerationDelta) for t in e.token_ids]


def test_models_and_status(client: Client, server: LiveServer) -> None:
    models = client.models()
    assert models[0].id == server.model
    assert models[0].is_default
    assert client.status().engine_state == generation_service_pb2.ENGINE_STATE_READY


def test_two_requests_multiplexed_on_one_stream(client: Client) -> None:
    text_prompt = "Hello there, tiny model"
    text_tokens = client.tokenize(text_prompt)
    chat_tokens = client.tokenize(CHAT)
    assert len(text_tokens) != len(chat_tokens)  # so each started event shows whose prompt it counted

    with client.session() as session:
        text_request = session.start(text_prompt, request_id="text", **fixed_length(5))
        chat_request = session.start(CHAT, request_id="chat", **fixed_length(3))
        assert sorted(session.running) == ["chat", "text"]
        # Read the second request first: the first one's events wait in its own queue meanwhile.
        chat_events = read_all(chat_request)
        text_events = read_all(text_request)

    for events, prompt_tokens, max_tokens in ((text_events, text_tokens, 5), (chat_events, chat_tokens, 3)):
        started, finished = events[0], events[-1]
        assert isinstance(started, generation_pb2.GenerationStarted)
        assert isinstance(finished, generation_pb2.GenerationFinished)
        assert started.prompt_tokens == len(prompt_tokens)
        assert finished.finish_reason == LENGTH
        assert finished.usage.prompt_tokens == len(prompt_tokens)
        assert finished.usage.completion_tokens == max_tokens
        assert len(delta_token_ids(events)) == max_tokens
    assert session.running == []


def test_cancel_ends_one_request_and_not_the_other(client: Client) -> None:
    with client.session() as session:
        # No max_tokens: without the cancel it would run to the end of the context window.
        endless = session.start("Keep talking", ignore_eos=True)
        short = session.start("Stop soon", **fixed_length(4))
        first = next(endless)
        assert isinstance(first, generation_pb2.GenerationStarted)
        first_delta = next(endless)
        assert isinstance(first_delta, generation_pb2.GenerationDelta)
        endless.cancel()
        endless_rest = list(endless)
        short_result = short.result()

    finished = endless_rest[-1]
    assert isinstance(finished, generation_pb2.GenerationFinished)
    assert finished.finish_reason == CANCELLED
    context_length = client.models()[0].context_length
    assert finished.usage.completion_tokens < context_length - first.prompt_tokens
    assert finished.usage.completion_tokens == len(first_delta.token_ids) + len(delta_token_ids(endless_rest))

    assert short_result.finish_reason == LENGTH
    assert len(short_result.token_ids) == 4


def test_tokenize_text_and_chat(client: Client) -> None:
    text = "Hello, world"
    text_ids = client.tokenize(text)
    assert text_ids and all(isinstance(i, int) for i in text_ids)
    assert client.detokenize(text_ids, skip_special_tokens=True) == text
    assert client.tokenize(text_ids) == text_ids  # token input comes back as is

    chat_ids = client.tokenize(CHAT)
    rendered = client.detokenize(chat_ids)
    for message in CHAT:
        assert message["content"] in rendered
    assert len(chat_ids) > len(client.tokenize(CHAT[1]["content"]))

    pieces = client.token_strings(text)
    assert [token_id for token_id, _ in pieces] == text_ids


def test_invalid_temperature_names_the_field(client: Client) -> None:
    with pytest.raises(RequestError) as refused:
        client.complete("Hi", temperature=-1, max_tokens=2)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.field == "sampling.temperature"

    with client.session() as session:
        bad = session.start("Hi", request_id="bad", temperature=-1, max_tokens=2)
        good = session.start("Hi", request_id="good", **fixed_length(2))
        with pytest.raises(RequestError) as refused_on_stream:
            list(bad)
        # One refused request does not end the stream.
        assert good.result().finish_reason == LENGTH
    assert refused_on_stream.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused_on_stream.value.field == "sampling.temperature"
    assert refused_on_stream.value.request_id == "bad"


def test_generate_and_complete(client: Client) -> None:
    events = list(client.generate("Once upon a time", **fixed_length(4)))
    assert isinstance(events[0], generation_pb2.GenerationStarted)
    assert isinstance(events[-1], generation_pb2.GenerationFinished)
    assert events[-1].finish_reason == LENGTH
    assert len(delta_token_ids(events)) == 4

    completion = client.complete(CHAT, **fixed_length(3))
    assert len(completion.token_ids) == 3
    assert completion.finished.usage.completion_tokens == 3
    assert completion.finished.finish_reason == LENGTH

    text = "".join(client.generate_text("Once upon a time", **fixed_length(4)))
    assert isinstance(text, str)


# Structured output and tool calls. The tiny model's weights are random: only the grammar makes its
# output valid, so the schemas bound every value (enums, booleans) to keep the outputs short.
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "enum": ["Ada", "Grace"]}, "admin": {"type": "boolean"}},
    "required": ["name", "admin"],
}
WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"enum": ["Paris", "Tokyo"]}}, "required": ["city"]},
}
# OpenAI's shape, with the schema as JSON text.
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The current time in a timezone",
        "parameters": json.dumps({"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"]}),
    },
}
WEATHER_QUESTION: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]


def check_weather_call(call: prompt_pb2.ToolCall) -> None:
    assert call.name == "get_weather"
    assert call.id
    arguments = parse_arguments(call)
    assert list(arguments) == ["city"]
    assert arguments["city"] in ("Paris", "Tokyo"), call.arguments


def test_json_schema_constrains_the_output(client: Client) -> None:
    for schema in (PERSON, json.dumps(PERSON)):
        completion = client.complete("A user:", temperature=0, max_tokens=200, json_schema=schema)
        assert completion.finish_reason == STOP, completion.text
        value = json.loads(completion.text)
        assert sorted(value) == ["admin", "name"]
        assert value["name"] in ("Ada", "Grace")
        assert isinstance(value["admin"], bool)
        assert completion.tool_calls == []


def test_choice_and_regex_constrain_the_output(client: Client) -> None:
    choices = ["yes", "no", "maybe"]
    chosen = client.complete("Is it raining?", temperature=0, max_tokens=20, choice=choices)
    assert chosen.text in choices
    assert chosen.finish_reason == STOP

    with client.session() as session:
        year = session.start("A year:", temperature=0, max_tokens=20, regex="(19|20)[0-9]{2}").result()
    assert len(year.text) == 4 and year.text[:2] in ("19", "20") and year.text.isdigit(), year.text


def test_required_tool_choice_returns_a_call(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    streamed: list[prompt_pb2.ToolCall] = []
    finished = None
    for event in client.generate(WEATHER_QUESTION, tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=200):
        if isinstance(event, generation_pb2.GenerationDelta):
            streamed.extend(event.tool_calls)
        elif isinstance(event, generation_pb2.GenerationFinished):
            finished = event
    assert finished is not None and finished.finish_reason == TOOL_CALLS
    assert len(streamed) == 1
    check_weather_call(streamed[0])

    # complete() runs the unary Complete RPC, whose response carries the calls, not a stream.
    def no_stream(*args: object, **kwargs: object) -> None:
        raise AssertionError("complete() opened a GenerateStream")

    monkeypatch.setattr(client.stub, "GenerateStream", no_stream)
    completion = client.complete(WEATHER_QUESTION, tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=200)
    assert completion.finish_reason == TOOL_CALLS
    assert completion.text == ""  # the call's markup is not part of the text
    assert len(completion.tool_calls) == 1
    check_weather_call(completion.tool_calls[0])
    assert completion.tool_calls[0].arguments == streamed[0].arguments  # greedy: the same call


def test_tool_call_round_trip(client: Client) -> None:
    tools = [TIME, WEATHER]
    first = client.complete(
        WEATHER_QUESTION, tools=tools, tool_choice={"function": "get_weather"}, temperature=0, max_tokens=200
    )
    assert first.finish_reason == TOOL_CALLS
    [call] = first.tool_calls
    check_weather_call(call)

    result = {"temperature_celsius": 21, "sky": "clear"}
    messages = [*WEATHER_QUESTION, first.assistant_message(), tool_message(call, result)]
    assert messages[2] == {"role": "tool", "content": json.dumps(result), "tool_call_id": call.id, "name": "get_weather"}
    with client.session() as session:
        answer = session.start(messages, tools=tools, temperature=0, max_tokens=16).result()
    assert answer.finish_reason in (STOP, LENGTH, TOOL_CALLS)
    assert answer.finished.usage.prompt_tokens > first.finished.usage.prompt_tokens
    rendered = client.detokenize(client.tokenize(build_prompt(messages, tools=tools)))
    assert json.dumps(result) in rendered  # the tool result is in the prompt


def test_invalid_json_schema_names_the_field(client: Client) -> None:
    for schema in ({"type": "nonsense"}, "{not json"):
        with pytest.raises(RequestError) as refused:
            client.complete("Hi", json_schema=schema, max_tokens=2)
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.field == "sampling.json_schema"

    with client.session() as session:
        bad = session.start("Hi", json_schema={"type": "nonsense"}, max_tokens=2)
        with pytest.raises(RequestError) as refused_on_stream:
            bad.result()
    assert refused_on_stream.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused_on_stream.value.field == "sampling.json_schema"

    # Two formats, or a tool choice that is none of the forms, are refused before anything is sent.
    with pytest.raises(ValueError, match="at most one structured output format"):
        client.complete("Hi", regex="a+", choice=["a"])
    with pytest.raises(ValueError, match="tool_choice"):
        client.complete(WEATHER_QUESTION, tools=[WEATHER], tool_choice="sometimes")


def test_lora_adapter_load_select_unload(client: Client, server: LiveServer) -> None:
    path = str(REPO_ROOT / "test" / "fixtures" / "lora" / "mlx")
    info = client.load_adapter("py-lora", path)
    assert (info.id, info.parent, info.adapter.format, info.adapter.rank) == ("py-lora", server.model, "mlx-lm", 4)
    assert [(m.id, m.parent) for m in client.models()] == [(server.model, ""), ("py-lora", server.model)]
    by_model = client.complete("abc", model="py-lora", **fixed_length(6))
    by_field = client.complete("abc", adapter="py-lora", **fixed_length(6))
    assert by_model.model == by_field.model == "py-lora"
    assert by_model.token_ids == by_field.token_ids
    streamed = [e for e in client.generate("abc", adapter="py-lora", **fixed_length(6))]
    assert delta_token_ids(streamed) == by_model.token_ids
    with pytest.raises(RequestError) as already:
        client.load_adapter("py-lora", path)
    assert already.value.code == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(RequestError) as clash:
        client.load_adapter(server.model, path)
    assert clash.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert clash.value.field == "name"
    client.unload_adapter("py-lora")
    with pytest.raises(RequestError) as gone:
        client.complete("abc", model="py-lora", max_tokens=2)
    assert gone.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(RequestError) as unknown:
        client.unload_adapter("py-lora")
    assert unknown.value.code == grpc.StatusCode.NOT_FOUND


def test_prompt_cache_key_is_sent_as_metadata(client: Client) -> None:
    from mlxserve.client import prompt_cache_metadata

    # The same encoding as the REST adapter's, so a key routes the same way from either.
    assert prompt_cache_metadata("conversation-7") == [("x-prompt-cache-key", "conversation-7")]
    assert prompt_cache_metadata("é 100%") == [("x-prompt-cache-key", "%C3%A9%20100%25")]
    assert prompt_cache_metadata("") is None
    assert prompt_cache_metadata(None) is None
    with pytest.raises(ValueError, match="at most 256 bytes"):
        prompt_cache_metadata("é" * 129)

    assert client.complete("abc", max_tokens=2, prompt_cache_key="conversation-7").finished.usage.completion_tokens == 2
    assert "".join(client.generate_text("abc", max_tokens=2, temperature=0, prompt_cache_key="é")) is not None
    with client.session(prompt_cache_key="session-key") as session:
        assert session.start("abc", max_tokens=2).result().finished.usage.completion_tokens == 2
    with pytest.raises(ValueError, match="prompt_cache_key"):
        client.complete("abc", prompt_cache_key="k" * 257)

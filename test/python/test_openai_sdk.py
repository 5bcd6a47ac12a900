"""The OpenAI-compatible API through the official OpenAI Python SDK: answers and streams in
OpenAI's shapes, n, stop, logprobs, usage with cached tokens, errors, and a stream closed early
freeing its engine slot."""

import time

import openai
import pytest

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
        client.chat.completions.create(model=model, messages=USER, response_format={"type": "json_object"})
    assert e.value.body["param"] == "response_format.type"


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

# Chat with the server through the official OpenAI Python SDK (pip install openai).
import os

from openai import OpenAI

client = OpenAI(base_url=os.environ.get("OPENAI_BASE_URL", "http://localhost:8080/v1"), api_key="unused")

reply = client.chat.completions.create(
    model="default",
    messages=[{"role": "user", "content": "What is the capital of France?"}],
    max_tokens=32,
    temperature=0,
)
print(reply.choices[0].message.content)
print(reply.usage)  # prompt_tokens_details.cached_tokens: prompt tokens served from the prefix cache

stream = client.chat.completions.create(
    model="default",
    messages=[{"role": "user", "content": "Write a haiku about batching."}],
    max_tokens=32,
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
print()

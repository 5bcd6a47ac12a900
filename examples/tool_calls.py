# A tool-call round trip through the OpenAI Python SDK: the model calls a function, we run it and
# send the result back, and the model answers. tool_choice "required" makes the call certain (the
# server constrains it to the tool's schema); "auto" lets the model choose.
import json
import os

from openai import OpenAI

client = OpenAI(base_url=os.environ.get("OPENAI_BASE_URL", "http://localhost:8080/v1"), api_key="unused")

tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 24}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                "required": ["city", "unit"],
            },
        },
    }
]
messages = [{"role": "user", "content": "What is the weather in Paris?"}]

reply = client.chat.completions.create(model="default", messages=messages, tools=tools, tool_choice="required", max_tokens=200)
call = reply.choices[0].message.tool_calls[0]
print(reply.choices[0].finish_reason, call.function.name, json.loads(call.function.arguments))

messages.append(reply.choices[0].message)
messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "sky": "sunny"})})
stream = client.chat.completions.create(model="default", messages=messages, tools=tools, max_tokens=60, stream=True)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
print()

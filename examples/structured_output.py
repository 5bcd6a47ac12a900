# Typed structured output through the OpenAI Python SDK: the reply is parsed into a Pydantic model.
import os
from typing import Literal

from openai import OpenAI
from pydantic import BaseModel, Field

client = OpenAI(base_url=os.environ.get("OPENAI_BASE_URL", "http://localhost:8080/v1"), api_key="unused")


class Planet(BaseModel):
    name: str = Field(max_length=20)
    kind: Literal["rocky", "gas giant", "ice giant"]
    moons: int = Field(ge=0, le=200)


completion = client.chat.completions.parse(
    model="default",
    messages=[{"role": "user", "content": "Describe Jupiter."}],
    response_format=Planet,
    max_tokens=100,
    temperature=0,
)
planet = completion.choices[0].message.parsed
print(type(planet).__name__, planet)

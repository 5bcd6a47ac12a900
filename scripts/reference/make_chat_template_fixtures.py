#!/usr/bin/env python3
"""Writes what transformers' apply_chat_template renders for the chat templates of the model families
people run, for test/chat-template-families.test.ts to hold our renderer (src/text/chat-template.ts
over @huggingface/jinja, through Tokenizer.applyChatTemplate) to, character for character.

The templates are llama.cpp's copies of each model's Hugging Face chat template
(models/templates/*.jinja in a llama.cpp checkout; bench/peers/setup.sh puts one in
$PEERS_DIR/llama.cpp, default ~/.cache/mlx-batch-server-peers). Each is rendered by a transformers
tokenizer (PreTrainedTokenizerFast over an empty vocabulary, with the model's named special tokens
and the template) through apply_chat_template(..., tokenize=False): the same Jinja environment,
globals (raise_exception, strftime_now, namespace, the tojson override) and message normalization
as for the real model. strftime_now is pinned to NOW so the date-reading templates (Llama 3.2) render
the same on every run; the test pins Date to the same instant.

For each family it writes test/fixtures/chat-templates/<family>.json: where the template comes
from and its license, its sha256, the special tokens the template sees, and the cases (messages,
tools, add_generation_prompt, and the expected text or the template's error). The template source
itself goes into the fixture only for Apache-2.0/MIT families; for Llama 3.x and Gemma (licensed
under their own terms) the test reads it from the llama.cpp checkout.

Usage (from the repository root, in a virtualenv with transformers 5.25.0, tokenizers and jinja2 3.1.6):
    python scripts/reference/make_chat_template_fixtures.py [--templates DIR] [--out test/fixtures/chat-templates] [--only qwen3 ...]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import transformers.utils.chat_template_utils as chat_template_utils
from jinja2.exceptions import TemplateError
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

# strftime_now's clock, local time (noon, so the date is the same in every time zone a test runs in).
NOW = "2026-03-14T12:00:00"

# Named special tokens as each model's tokenizer_config.json sets them (transformers passes these,
# special_tokens_map, to the template; unset ones are not passed at all).
QWEN_TOKENS = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
LLAMA3_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}

FAMILIES = {
    "qwen2.5": {
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "file": "Qwen-Qwen2.5-7B-Instruct.jinja",
        "license": "Apache-2.0",
        "special_tokens": QWEN_TOKENS,
        "kinds": ["system", "tools", "parallel_tools"],
    },
    "qwen3": {
        "model": "Qwen/Qwen3-0.6B",
        "file": "Qwen-Qwen3-0.6B.jinja",
        "license": "Apache-2.0",
        "special_tokens": QWEN_TOKENS,
        "kinds": ["system", "tools", "parallel_tools", "thinking"],
    },
    "llama3.1": {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "file": "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "license": "Llama 3.1 Community License",
        "special_tokens": LLAMA3_TOKENS,
        "kinds": ["system", "tools", "single_tool_call_only"],
    },
    "llama3.2": {
        "model": "meta-llama/Llama-3.2-3B-Instruct",
        "file": "meta-llama-Llama-3.2-3B-Instruct.jinja",
        "license": "Llama 3.2 Community License",
        "special_tokens": LLAMA3_TOKENS,
        "kinds": ["system", "tools", "single_tool_call_only"],
    },
    "phi3.5": {
        "model": "microsoft/Phi-3.5-mini-instruct",
        "file": "microsoft-Phi-3.5-mini-instruct.jinja",
        "license": "MIT",
        "special_tokens": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>", "pad_token": "<|endoftext|>"},
        "kinds": ["system", "empty_system"],
    },
    "mistral-nemo": {
        "model": "mistralai/Mistral-Nemo-Instruct-2407",
        "file": "mistralai-Mistral-Nemo-Instruct-2407.jinja",
        "license": "Apache-2.0",
        "special_tokens": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
        "kinds": ["system", "tools", "parallel_tools", "alternation", "mistral_call_ids"],
    },
    "gemma2": {
        "model": "google/gemma-2-2b-it",
        "file": "google-gemma-2-2b-it.jinja",
        "license": "Gemma Terms of Use",
        "special_tokens": {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"},
        "kinds": ["no_system", "alternation"],
    },
    "smollm3": {
        "model": "HuggingFaceTB/SmolLM3-3B",
        "file": "HuggingFaceTB-SmolLM3-3B.jinja",
        "license": "Apache-2.0",
        "note": "Unsloth's edit of the model's template, as its header says; it does not read `tools`",
        "special_tokens": {"eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
        "kinds": ["system", "reasoning_mode"],
    },
}

# Apache-2.0/MIT templates may be copied into the repository; the others are only read from llama.cpp.
PERMISSIVE = {"Apache-2.0", "MIT"}

SYSTEM = "You are a concise assistant. Answer in one sentence."
USER_1 = "What is the capital of France?"
ASSISTANT_1 = "The capital of France is Paris."
USER_2 = 'And of Germany? Quote it "like this", with <tags> & café ☕.'
ASSISTANT_2 = "Berlin — \"Berlin\" <b>&</b> ☕."
# Leading/trailing whitespace that some templates trim (Llama, Gemma) and others keep.
SPACED_USER = "  Two lines,\nwith spaces around them.  \n"

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city — in °C or °F. Returns <json> & nothing else.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. Zürich"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
SEARCH_TOOL = {
    "name": "search_docs",
    "description": "Search the documentation.",
    "parameters": {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 20},
            "filters": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["query"],
    },
}
TOOLS = [WEATHER_TOOL, SEARCH_TOOL]

# Nine alphanumeric characters: the only ids Mistral's template accepts.
CALL_ID_1 = "Ab12Cd34E"
CALL_ID_2 = "Xy98Zw76V"
WEATHER_CALL = {"id": CALL_ID_1, "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}
SEARCH_CALL = {
    "id": CALL_ID_2,
    "type": "function",
    "function": {"name": "search_docs", "arguments": {"query": "chat templates", "limit": 5, "filters": ["jinja", "tools"]}},
}
WEATHER_RESULT = '{"temperature": 22.5, "unit": "celsius", "sky": "clear"}'
SEARCH_RESULT = "Found 2 pages: <a>Templates</a> & <b>Tools</b>."
WEATHER_ANSWER = "It is 22.5 °C and clear in Zürich."
# A tool with neither description nor parameters, which OpenAI's API allows.
TIME_TOOL = {"name": "get_time"}
# Arguments and a result with every JSON type and the characters JSON encoders escape differently.
ODD_TEXT = 'tab\there "quoted" back\\slash 👋🏽 \u2028 del\x7f </script> end'
ODD_CALL = {
    "id": CALL_ID_1,
    "type": "function",
    "function": {
        "name": "search_docs",
        "arguments": {
            "query": ODD_TEXT,
            "limit": -3,
            "exact": True,
            "cursor": None,
            "ratio": 0.25,
            "big": 12345678901234,
            "filters": [],
            "options": {},
            "nested": {"a": [1, {"b": False}]},
        },
    },
}
# 20.0 is a float in Python (json.dumps writes 20.0) and the number 20 in JavaScript (JSON.stringify writes 20).
FLOAT_CALL = {"id": CALL_ID_1, "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 2.0}}}

# Cases our renderer cannot match, and why; the test skips them with this reason.
KNOWN_DIFFERENCES = {
    "an integral float argument (2.0)": "JavaScript has one number type: the arguments' 2.0 is parsed as 2, and tojson writes "
    "2 where Python's json.dumps writes 2.0 (the number is the same; the prompt text differs by '.0')",
}


def msg(role: str, content: str, **extra) -> dict:
    return {"role": role, "content": content, **extra}


def call_message(calls: list[dict], content: str = "") -> dict:
    # The server hands templates an empty string where an OpenAI client sent content null with its calls.
    return msg("assistant", content, tool_calls=calls)


def tool_result(call: dict, content: str) -> dict:
    return msg("tool", content, tool_call_id=call["id"], name=call["function"]["name"])


def case(name: str, messages: list[dict], add_generation_prompt: bool, tools: list[dict] | None = None) -> dict:
    c = {"name": name, "messages": messages, "add_generation_prompt": add_generation_prompt}
    if tools is not None:
        c["tools"] = tools
    if name in KNOWN_DIFFERENCES:
        c["known_difference"] = KNOWN_DIFFERENCES[name]
    return c


def cases_for(kinds: list[str]) -> list[dict]:
    out: list[dict] = []
    if "system" in kinds:
        out += [
            case("system and user, generation prompt", [msg("system", SYSTEM), msg("user", USER_1)], True),
            case("system and user, no generation prompt", [msg("system", SYSTEM), msg("user", USER_1)], False),
            case("user only", [msg("user", USER_1)], True),
            case(
                "multi-turn with an assistant turn",
                [msg("system", SYSTEM), msg("user", USER_1), msg("assistant", ASSISTANT_1), msg("user", USER_2)],
                True,
            ),
            case(
                "multi-turn ending with the assistant, no generation prompt",
                [msg("system", SYSTEM), msg("user", USER_1), msg("assistant", ASSISTANT_1), msg("user", USER_2), msg("assistant", ASSISTANT_2)],
                False,
            ),
            case("whitespace around the content", [msg("system", f"  {SYSTEM}\n"), msg("user", SPACED_USER)], True),
        ]
    if "no_system" in kinds:
        out += [
            case("user, generation prompt", [msg("user", USER_1)], True),
            case("user, no generation prompt", [msg("user", USER_1)], False),
            case(
                "multi-turn with an assistant turn",
                [msg("user", USER_1), msg("assistant", ASSISTANT_1), msg("user", USER_2)],
                True,
            ),
            case(
                "multi-turn ending with the assistant, no generation prompt",
                [msg("user", USER_1), msg("assistant", ASSISTANT_1), msg("user", USER_2), msg("assistant", ASSISTANT_2)],
                False,
            ),
            case("whitespace around the content", [msg("user", SPACED_USER)], True),
            case("a system message is refused", [msg("system", SYSTEM), msg("user", USER_1)], True),
        ]
    if "empty_system" in kinds:
        out.append(case("empty system message is left out", [msg("system", ""), msg("user", USER_1)], True))
    if "alternation" in kinds:
        out.append(case("two user turns in a row are refused", [msg("user", USER_1), msg("user", USER_2)], True))
    if "thinking" in kinds:
        thought = "<think>\nThe user asks for a capital.\n</think>\n\n" + ASSISTANT_1
        out += [
            case(
                "earlier assistant reasoning is dropped",
                [msg("user", USER_1), msg("assistant", thought), msg("user", USER_2)],
                True,
            ),
            case(
                "reasoning of the last assistant turn is kept",
                [msg("system", SYSTEM), msg("user", USER_1), msg("assistant", thought)],
                False,
            ),
        ]
    if "reasoning_mode" in kinds:
        out += [
            case("/no_think in the system message", [msg("system", f"{SYSTEM} /no_think"), msg("user", USER_1), msg("assistant", ASSISTANT_1), msg("user", USER_2)], True),
            case("/think in the system message", [msg("system", f"/think {SYSTEM}"), msg("user", USER_1)], True),
        ]
    if "tools" in kinds:
        round_trip = [msg("user", USER_1.replace("capital of France", "weather in Zürich")), call_message([WEATHER_CALL]), tool_result(WEATHER_CALL, WEATHER_RESULT)]
        out += [
            case("tools offered, system and user", [msg("system", SYSTEM), msg("user", USER_1)], True, TOOLS),
            case("tools offered, user only", [msg("user", USER_1)], True, TOOLS),
            case("a tool call and its result", [msg("system", SYSTEM), *round_trip], True, TOOLS),
            case(
                "a tool call, its result and the answer, no generation prompt",
                [msg("system", SYSTEM), *round_trip, msg("assistant", WEATHER_ANSWER)],
                False,
                TOOLS,
            ),
            case("a tool call and its result without tools offered", [msg("system", SYSTEM), *round_trip], True),
            case("a tool without description or parameters", [msg("user", "What time is it?")], True, [WEATHER_TOOL, TIME_TOOL]),
            case(
                "arguments and results of every JSON type",
                [msg("user", USER_1), call_message([ODD_CALL]), tool_result(ODD_CALL, ODD_TEXT)],
                True,
                TOOLS,
            ),
            case(
                "an integral float argument (2.0)",
                [msg("user", "Weather in Oslo for two days?"), call_message([FLOAT_CALL]), tool_result(FLOAT_CALL, WEATHER_RESULT)],
                True,
                TOOLS,
            ),
        ]
    if "parallel_tools" in kinds:
        out.append(
            case(
                "two tool calls in one turn and their results",
                [
                    msg("user", "Weather in Zürich, and the docs on chat templates?"),
                    call_message([WEATHER_CALL, SEARCH_CALL], "" if "mistral_call_ids" in kinds else "Checking both."),
                    tool_result(WEATHER_CALL, WEATHER_RESULT),
                    tool_result(SEARCH_CALL, SEARCH_RESULT),
                ],
                True,
                TOOLS,
            )
        )
    if "single_tool_call_only" in kinds:
        out.append(
            case(
                "two tool calls in one turn are refused",
                [msg("user", USER_1), call_message([WEATHER_CALL, SEARCH_CALL])],
                True,
                TOOLS,
            )
        )
    if "mistral_call_ids" in kinds:
        bad = copy.deepcopy(WEATHER_CALL)
        bad["id"] = "call_1"
        out.append(case("a tool call id that is not 9 characters is refused", [msg("user", USER_1), call_message([bad]), tool_result(bad, WEATHER_RESULT)], True, TOOLS))
    return out


# strftime_now formats (what templates in the wild use, then every directive), at instants that
# cover one- and two-digit fields, AM and PM. Written to strftime-now.json.
STRFTIME_FORMATS = [
    "%d %b %Y",
    "%Y-%m-%d",
    "%B %d, %Y",
    "%a %A %b %h %B",
    "%c | %x | %X",
    "%H:%M:%S %I %p %j %u %w %y %e %f",
    "%-d %-m %-H %-M %-j %-I",
    "%z%Z %% %Q",
]
STRFTIME_INSTANTS = [NOW, "2026-01-05T09:07:03.004000", "2024-12-31T23:59:59.999000"]


class FixedDatetime(datetime):
    """datetime whose now() is FixedDatetime.at: what strftime_now reads in transformers' template globals."""

    at = NOW

    @classmethod
    def now(cls, tz=None):  # noqa: ARG003 - the signature datetime.now has
        return datetime.fromisoformat(cls.at)


def strftime_now_fixture() -> dict:
    """What transformers' strftime_now global gives a template, per instant and format."""
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")))
    out = {}
    for at in STRFTIME_INSTANTS:
        FixedDatetime.at = at
        out[at] = {
            fmt: tokenizer.apply_chat_template(
                [msg("user", "")], chat_template="{{ strftime_now(fmt) }}", fmt=fmt, tokenize=False
            )
            for fmt in STRFTIME_FORMATS
        }
    FixedDatetime.at = NOW
    return out


def render(template: str, special_tokens: dict, c: dict) -> dict:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")),
        chat_template=template,
        **special_tokens,
    )
    assert tokenizer.special_tokens_map == special_tokens, tokenizer.special_tokens_map
    tools = [{"type": "function", "function": t} for t in c["tools"]] if "tools" in c else None
    try:
        text = tokenizer.apply_chat_template(
            copy.deepcopy(c["messages"]), tools=tools, add_generation_prompt=c["add_generation_prompt"], tokenize=False
        )
    except TemplateError as err:
        return {"error": str(err)}
    return {"expected": text}


def main() -> None:
    peers = Path(os.environ.get("PEERS_DIR", Path.home() / ".cache" / "mlx-batch-server-peers"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", type=Path, default=peers / "llama.cpp" / "models" / "templates")
    parser.add_argument("--out", type=Path, default=Path("test/fixtures/chat-templates"))
    parser.add_argument("--only", nargs="*", choices=sorted(FAMILIES))
    args = parser.parse_args()

    chat_template_utils.datetime = FixedDatetime
    args.out.mkdir(parents=True, exist_ok=True)
    strftime_path = args.out / "strftime-now.json"
    strftime_fixture = {
        "comment": "transformers' strftime_now template global (datetime.now().strftime, C locale) at fixed local times "
        "(scripts/reference/make_chat_template_fixtures.py).",
        "generator": {"transformers": version("transformers"), "jinja2": version("jinja2")},
        "renders": strftime_now_fixture(),
    }
    strftime_path.write_text(json.dumps(strftime_fixture, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"{strftime_path}: {len(STRFTIME_INSTANTS)} instants x {len(STRFTIME_FORMATS)} formats")
    for family, spec in FAMILIES.items():
        if args.only and family not in args.only:
            continue
        template = (args.templates / spec["file"]).read_text(encoding="utf-8")
        permissive = spec["license"] in PERMISSIVE
        where = f"{spec['model']}'s chat template, as llama.cpp's models/templates/{spec['file']} holds it"
        if "note" in spec:
            where += f" ({spec['note']})"
        fixture = {
            "comment": f"Template: {where}; license {spec['license']}"
            + ("" if permissive else " (not copied here: the test reads it from a llama.cpp checkout)")
            + ". Expected texts: transformers' apply_chat_template (scripts/reference/make_chat_template_fixtures.py).",
            "family": family,
            "model": spec["model"],
            "template_file": spec["file"],
            "license": spec["license"],
            "template_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(),
            **({"template": template} if permissive else {}),
            "special_tokens": spec["special_tokens"],
            "now": NOW,
            "generator": {"transformers": version("transformers"), "jinja2": version("jinja2")},
            "cases": [],
        }
        for c in cases_for(spec["kinds"]):
            fixture["cases"].append({**c, **render(template, spec["special_tokens"], c)})
        path = args.out / f"{family}.json"
        path.write_text(json.dumps(fixture, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        errors = sum("error" in c for c in fixture["cases"])
        print(f"{path}: {len(fixture['cases'])} cases ({errors} refused by the template)")


if __name__ == "__main__":
    main()

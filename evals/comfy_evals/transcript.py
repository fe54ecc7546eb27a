"""The tool calls of one conversation, paired with their results, and the
references (`tool[i].path`) that datasets use to point into them.

Both the scorer and the scripted assistants read a conversation through
this module, so a check and a script mean the same thing by
`comfyui_generate_image.prompt_id`: the `prompt_id` field of the latest
result of that tool."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageTool, ChatMessageUser

# The call part of a reference: `tool`, `tool[0]` (its first call) or
# `tool[-1]` (its latest, the default); a `.path.to.field` may follow.
_REF = re.compile(r"^(?P<tool>[A-Za-z_][\w-]*)(?:\[(?P<index>-?\d+)\])?$")
_FENCED_JSON = re.compile(r"```json\s*\n(.*?)```", re.DOTALL)

QUESTION_JSON = "question.json"
"""The reference to the first ```json block of the question."""


class Unresolved(Exception):
    """A reference that points at nothing (a tool never called, a field
    missing from its result); the message says which."""


@dataclass
class Call:
    """One tool call: its arguments and, once it ran, its result text
    (the error message when the tool refused or failed)."""

    tool: str
    args: dict[str, Any]
    ok: bool | None = None
    text: str = ""

    @cached_property
    def result(self) -> Any:
        """The result parsed as JSON, or its raw text when it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return self.text


@dataclass
class Transcript:
    """The question, every tool call in order, and the final answer."""

    question: str
    calls: list[Call]
    answer: str

    @classmethod
    def from_messages(cls, messages: list[ChatMessage], answer: str = "") -> Transcript:
        """Reads a conversation: its first user message is the question;
        `answer` is the final answer (the model's last output)."""
        question = next((m.text for m in messages if isinstance(m, ChatMessageUser)), "")
        calls: list[Call] = []
        by_id: dict[str, Call] = {}
        for message in messages:
            if isinstance(message, ChatMessageAssistant):
                for tc in message.tool_calls or []:
                    call = Call(tc.function, dict(tc.arguments))
                    calls.append(call)
                    by_id[tc.id] = call
            elif isinstance(message, ChatMessageTool) and message.tool_call_id in by_id:
                call = by_id[message.tool_call_id]
                call.ok = message.error is None
                call.text = message.error.message if message.error else message.text
        return cls(question, calls, answer)

    def calls_to(self, tool: str) -> list[Call]:
        """The calls to one tool, in order."""
        return [c for c in self.calls if c.tool == tool]

    def question_json(self) -> Any:
        """The first ```json block of the question, parsed."""
        match = _FENCED_JSON.search(self.question)
        if not match:
            raise Unresolved("the question has no ```json block")
        return json.loads(match.group(1))

    def call(self, ref: str) -> Call:
        """The call a reference's `tool[index]` part names (the latest call
        to that tool by default), among the calls that have a result."""
        match = _REF.match(ref.split(".")[0])
        if not match:
            raise Unresolved(f"bad reference {ref!r}")
        calls = [c for c in self.calls_to(match["tool"]) if c.ok is not None]
        index = int(match["index"] or -1)
        if not -len(calls) <= index < len(calls):
            raise Unresolved(f"{match['tool']} has no call [{index}] with a result")
        return calls[index]

    def resolve(self, ref: str) -> Any:
        """The value a reference points at: `question.json`, or
        `tool[index].path` read from that call's result (the whole result
        without a path)."""
        if ref == QUESTION_JSON:
            return self.question_json()
        call = self.call(ref)
        if "." not in ref:
            return call.result
        if not call.ok:
            raise Unresolved(f"{ref.split('.')[0]} failed: {call.text}")
        return _dig(call.result, ref.split(".", 1)[1])


def _dig(value: Any, path: str) -> Any:
    """Follows a dotted path (`outputs.0.filename`) into parsed JSON."""
    for key in path.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value):
            value = value[int(key)]
        else:
            raise Unresolved(f"no field {path!r} in the result")
    return value

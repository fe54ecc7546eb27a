"""Scripted assistants on Inspect's mock model, to prove the harness
without a language model (CI has none).

The assistant finds the sample by its question (the first user message)
and follows the sample's `script` (the perfect assistant) or
`wrong_script` (the wrong one): one tool call per turn, then the final
answer. Step arguments and the answer may hold `{{reference}}`s
(transcript.py) to earlier results, so a script can pass on the prompt id
or the workflow the server returned, as a model would."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelOutput, ModelUsage, get_model
from inspect_ai.tool import ToolChoice, ToolInfo

from .dataset import SUITES, read_lines
from .transcript import Transcript

_PLACEHOLDER = re.compile(r"\{\{([^{}]+)\}\}")
_SCRIPT_KEYS = {"perfect": "script", "wrong": "wrong_script"}


def scripted_assistant(kind: Literal["perfect", "wrong"]) -> Model:
    """A mock model (`mockllm/perfect` or `mockllm/wrong`) that plays every
    sample's `script` or `wrong_script`."""
    scripts = {line["input"]: line[_SCRIPT_KEYS[kind]] for suite in SUITES for line in read_lines(suite)}

    def respond(
        messages: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig
    ) -> ModelOutput:
        transcript = Transcript.from_messages(messages)
        steps = scripts[transcript.question]
        step = steps[min(len(transcript.calls), len(steps) - 1)]
        if "call" in step:
            args = render(step["args"], transcript)
            output = ModelOutput.for_tool_call(model=kind, tool_name=step["call"], tool_arguments=args)
        else:
            output = ModelOutput.from_content(model=kind, content=render(step["answer"], transcript))
        # With usage given, the mock model does not count tokens, which
        # would download a tokenizer (there is no network in CI).
        output.usage = ModelUsage()
        return output

    return get_model(f"mockllm/{kind}", custom_outputs=respond)


def render(value: Any, transcript: Transcript) -> Any:
    """Fills the `{{reference}}`s in a step: a string that is one reference
    becomes the value (objects as JSON text, as tools take workflows);
    references inside longer text become text."""
    if isinstance(value, dict):
        return {k: render(v, transcript) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, transcript) for v in value]
    if not isinstance(value, str):
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole:
        resolved = transcript.resolve(whole.group(1).strip())
        return json.dumps(resolved) if isinstance(resolved, (dict, list)) else resolved
    return _PLACEHOLDER.sub(lambda m: _text(transcript.resolve(m.group(1).strip())), value)


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)

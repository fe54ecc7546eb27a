"""Deterministic checks of a transcript: which tools were called with which
arguments, what they returned, and what the final answer says.

A dataset line lists its checks as small JSON objects whose first key
names the check; any other keys are its options:

    called            a call to the tool whose arguments include `args`
                      (and that succeeded or was refused, with `ok`):
                      {"called": "comfyui_create_workflow", "args": {"template": "txt2img"}}
    not_called        none of these tools was called
    order             these tools were called in this order (others may come between)
    max_calls         the tool was called at most `n` times
    no_blind_retry    no refused call was repeated with the same arguments
    arg_from          an argument of a call equals the value `ref` points at:
                      {"arg_from": "comfyui_get_progress.prompt_id",
                       "ref": "comfyui_generate_image.prompt_id"}
    result            a result succeeded or failed (`ok`), or a field of it `equals` a value:
                      {"result": "comfyui_validate_workflow[0].valid", "equals": false}
    answer_has        the final answer contains every one of these strings
    answer_has_any    ... at least one of them
    answer_lacks      ... none of them
    answer_has_result the final answer states the values these references point at
    grounded          every prompt id (UUID) and image file name in the answer
                      appears in the question or in a tool result

References are those of transcript.py (`tool[i].path`, `question.json`);
`arg_from` names a call the same way (`tool[i]`, the latest by default)
followed by an argument. Text comparisons ignore case; a workflow passed
as a JSON string equals the same workflow as an object."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .transcript import Transcript, Unresolved

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_IMAGE_FILE = re.compile(r"[\w.-]+\.(?:png|jpe?g|webp|gif)\b", re.IGNORECASE)


@dataclass
class Outcome:
    """One check's verdict, with the check as written and why it failed."""

    check: dict[str, Any]
    passed: bool
    detail: str = ""


def run_checks(checks: list[dict[str, Any]], transcript: Transcript) -> list[Outcome]:
    """Runs every check; a check whose reference resolves to nothing fails."""
    outcomes = []
    for check in checks:
        kind = next(iter(check))
        try:
            detail = KINDS[kind](check, transcript)
        except Unresolved as e:
            detail = str(e)
        outcomes.append(Outcome(check, detail is None, detail or ""))
    return outcomes


def _called(check: dict[str, Any], t: Transcript) -> str | None:
    tool, args, ok = check["called"], check.get("args", {}), check.get("ok")
    calls = t.calls_to(tool)
    if not calls:
        return f"{tool} was never called"
    if any(_subset(args, c.args) and (ok is None or c.ok == ok) for c in calls):
        return None
    wanted = f" with {json.dumps(args)}" if args else ""
    outcome = {True: " that succeeded", False: " that was refused"}.get(ok, "")
    return f"no call to {tool}{wanted}{outcome}; calls: {[c.args for c in calls]}"


def _not_called(check: dict[str, Any], t: Transcript) -> str | None:
    used = sorted({c.tool for c in t.calls} & set(check["not_called"]))
    return f"called {used}" if used else None


def _order(check: dict[str, Any], t: Transcript) -> str | None:
    wanted = list(check["order"])
    for call in t.calls:
        if wanted and call.tool == wanted[0]:
            wanted.pop(0)
    return f"no {check['order']} in that order; calls: {[c.tool for c in t.calls]}" if wanted else None


def _max_calls(check: dict[str, Any], t: Transcript) -> str | None:
    n = len(t.calls_to(check["max_calls"]))
    return f"{check['max_calls']} called {n} times (at most {check['n']})" if n > check["n"] else None


def _no_blind_retry(_check: dict[str, Any], t: Transcript) -> str | None:
    for i, call in enumerate(t.calls):
        if call.ok is False and any(c.tool == call.tool and c.args == call.args for c in t.calls[i + 1 :]):
            return f"repeated the refused call {call.tool}({json.dumps(call.args)})"
    return None


def _arg_from(check: dict[str, Any], t: Transcript) -> str | None:
    value, expected = _arg(check["arg_from"], t), t.resolve(check["ref"])
    return None if _same(value, expected) else f"{check['arg_from']} is {_short(value)}, not {_short(expected)}"


def _result(check: dict[str, Any], t: Transcript) -> str | None:
    ref = check["result"]
    if "ok" in check:
        call = t.call(ref)
        if call.ok != check["ok"]:
            return f"{ref} {'failed' if check['ok'] else 'succeeded'}: {_short(call.text)}"
    if "equals" in check:
        value = t.resolve(ref)
        if value != check["equals"]:
            return f"{ref} is {_short(value)}, not {_short(check['equals'])}"
    return None


def _answer_has(check: dict[str, Any], t: Transcript) -> str | None:
    missing = [s for s in check["answer_has"] if s.lower() not in t.answer.lower()]
    return f"the answer does not mention {missing}" if missing else None


def _answer_has_any(check: dict[str, Any], t: Transcript) -> str | None:
    words = check["answer_has_any"]
    return None if any(s.lower() in t.answer.lower() for s in words) else f"the answer mentions none of {words}"


def _answer_lacks(check: dict[str, Any], t: Transcript) -> str | None:
    present = [s for s in check["answer_lacks"] if s.lower() in t.answer.lower()]
    return f"the answer mentions {present}" if present else None


def _answer_has_result(check: dict[str, Any], t: Transcript) -> str | None:
    missing = []
    for ref in check["answer_has_result"]:
        value = t.resolve(ref)
        items = value if isinstance(value, list) else [value]
        missing += [f"{ref} = {_short(v)}" for v in items if not mentions(t.answer, v)]
    return f"the answer does not give {missing}" if missing else None


def _grounded(_check: dict[str, Any], t: Transcript) -> str | None:
    sources = (t.question + "\n" + "\n".join(c.text for c in t.calls)).lower()
    claims = _UUID.findall(t.answer) + _IMAGE_FILE.findall(t.answer)
    invented = [c for c in claims if c.lower() not in sources]
    return f"the answer gives ids or files no tool returned: {invented}" if invented else None


KINDS: dict[str, Callable[[dict[str, Any], Transcript], str | None]] = {
    "called": _called,
    "not_called": _not_called,
    "order": _order,
    "max_calls": _max_calls,
    "no_blind_retry": _no_blind_retry,
    "arg_from": _arg_from,
    "result": _result,
    "answer_has": _answer_has,
    "answer_has_any": _answer_has_any,
    "answer_lacks": _answer_lacks,
    "answer_has_result": _answer_has_result,
    "grounded": _grounded,
}


def mentions(text: str, value: Any) -> bool:
    """Whether `text` states `value`: a string ignoring case, spaces and
    `×` for `x` (1024x1024, 1024 × 1024); a number in any of its usual
    spellings (5.5, 5.50; 30, 30.0) but not as part of a longer number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _loose(str(value)) in _loose(text)
    if float(value).is_integer():
        digits = rf"{int(value)}(?:\.0+)?"
    else:
        digits = re.escape(repr(float(value))) + "0*"
    return re.search(rf"(?<![\d.]){digits}(?!\d|\.\d)", text) is not None


def _loose(text: str) -> str:
    return re.sub(r"\s+", "", text.lower().replace("×", "x"))


def _arg(ref: str, t: Transcript) -> Any:
    call, name = t.call(ref), ref.split(".", 1)[1]
    if name not in call.args:
        raise Unresolved(f"{ref}: the call has no argument {name!r}")
    return call.args[name]


def _subset(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Every expected argument is present and equal; a JSON-string argument
    is matched against an expected object field by field."""
    for key, want in expected.items():
        if key not in actual:
            return False
        got = actual[key]
        if isinstance(want, dict):
            got = _parsed(got)
            if not isinstance(got, dict) or not _subset(want, got):
                return False
        elif not _same(got, want):
            return False
    return True


def _same(a: Any, b: Any) -> bool:
    """Equal values, parsing JSON strings first (a workflow passed as text
    equals the same workflow as an object); strings ignore case."""
    a, b = _parsed(a), _parsed(b)
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def _parsed(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "…"

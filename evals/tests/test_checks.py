"""The check vocabulary on small hand-written transcripts: each kind both
passes and fails where it should, without a server."""

import json

import pytest

from comfy_evals.checks import mentions, run_checks
from comfy_evals.transcript import Call, Transcript

WORKFLOW = {"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
PROMPT_ID = "6f1c8a9e-1b2c-4d3e-8f4a-5b6c7d8e9f00"


def transcript(answer: str, *calls: Call) -> Transcript:
    return Transcript("Run this:\n```json\n" + json.dumps(WORKFLOW) + "\n```", list(calls), answer)


def ok(tool: str, args: dict, result: dict) -> Call:
    return Call(tool, args, True, json.dumps(result))


def refused(tool: str, args: dict, message: str) -> Call:
    return Call(tool, args, False, message)


GENERATED = ok("comfyui_generate_image", {"prompt": "fox"}, {"status": "submitted", "prompt_id": PROMPT_ID})
CREATED = ok("comfyui_create_workflow", {"template": "txt2img", "params": '{"steps": 25, "prompt": "fox"}'}, WORKFLOW)
BLOCKED = refused("comfyui_run_workflow", {"workflow": "{}"}, "Workflow blocked")


@pytest.mark.parametrize(
    "check, t, passes",
    [
        ({"called": "comfyui_create_workflow", "args": {"params": {"steps": 25}}}, transcript("", CREATED), True),
        ({"called": "comfyui_create_workflow", "args": {"params": {"steps": 20}}}, transcript("", CREATED), False),
        ({"called": "comfyui_run_workflow", "ok": True}, transcript("", BLOCKED), False),
        ({"not_called": ["comfyui_run_workflow"]}, transcript("", CREATED), True),
        ({"not_called": ["comfyui_run_workflow"]}, transcript("", BLOCKED), False),
        ({"order": ["comfyui_create_workflow", "comfyui_run_workflow"]}, transcript("", CREATED, BLOCKED), True),
        ({"order": ["comfyui_run_workflow", "comfyui_create_workflow"]}, transcript("", CREATED, BLOCKED), False),
        ({"max_calls": "comfyui_run_workflow", "n": 1}, transcript("", BLOCKED, BLOCKED), False),
        ({"no_blind_retry": True}, transcript("", BLOCKED, BLOCKED), False),
        # A refused call retried with other arguments is no blind retry.
        (
            {"no_blind_retry": True},
            transcript("", BLOCKED, refused("comfyui_run_workflow", {"workflow": "[]"}, "")),
            True,
        ),
        # A workflow passed on as text equals the object it came from.
        (
            {"arg_from": "comfyui_run_workflow.workflow", "ref": "comfyui_create_workflow"},
            transcript("", CREATED, ok("comfyui_run_workflow", {"workflow": json.dumps(WORKFLOW, indent=2)}, {})),
            True,
        ),
        ({"arg_from": "comfyui_run_workflow.workflow", "ref": "question.json"}, transcript("", BLOCKED), False),
        (
            {"arg_from": "comfyui_generate_image.prompt", "ref": "comfyui_list_models.items.1"},
            transcript("", ok("comfyui_list_models", {}, {"items": ["a", "fox"]}), GENERATED),
            True,
        ),
        ({"result": "comfyui_generate_image[0].status", "equals": "submitted"}, transcript("", GENERATED), True),
        ({"result": "comfyui_run_workflow[-1]", "ok": True}, transcript("", BLOCKED), False),
        ({"answer_has_any": ["blocked", "refused"]}, transcript("It was Blocked.", BLOCKED), True),
        ({"answer_lacks": ["data:image"]}, transcript("here: data:image/png;base64,AAAA"), False),
        ({"answer_has_result": ["comfyui_generate_image.prompt_id"]}, transcript(f"id {PROMPT_ID}", GENERATED), True),
        ({"answer_has_result": ["comfyui_generate_image.prompt_id"]}, transcript("id 1234", GENERATED), False),
        # A reference to a tool never called fails the check instead of raising.
        ({"answer_has_result": ["comfyui_get_job.status"]}, transcript("completed", GENERATED), False),
        ({"grounded": True}, transcript(f"Queued as {PROMPT_ID}.", GENERATED), True),
        ({"grounded": True}, transcript("Saved comfyui-mcp_00042_.png.", GENERATED), False),
    ],
)
def test_check(check, t, passes):
    [outcome] = run_checks([check], t)
    assert outcome.passed is passes, outcome.detail
    assert bool(outcome.detail) is not passes


@pytest.mark.parametrize(
    "text, value, found",
    [
        ("CFG 5.5, 30 steps", 5.5, True),
        ("CFG 5.50", 5.5, True),
        ("CFG 1", 1.0, True),
        ("CFG 1.5", 1.0, False),
        ("300 steps", 30, False),
        ("30.0 steps", 30, True),
        ("Sampler DPMPP_2M", "dpmpp_2m", True),
        ("1024 × 1024", "1024x1024", True),
    ],
)
def test_mentions(text, value, found):
    assert mentions(text, value) is found

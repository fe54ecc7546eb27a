"""End to end: every suite against comfy-sim through the real comfy-mcp,
driven by the scripted assistants. The perfect assistant must pass every
sample and the wrong one fail every sample on its checks (not by an
error); compare.py must report the difference between the two runs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai.scorer import CORRECT, INCORRECT

from comfy_evals.dataset import SUITES, read_lines
from comfy_evals.server import queueing_tools

COMPARE = Path(__file__).resolve().parents[1] / "compare.py"


def verdicts(log):
    """{sample id: (score value, explanation)}; the run must have finished."""
    assert log.status == "success", log.error
    return {s.id: (s.scores["tool_checks"].value, s.scores["tool_checks"].explanation) for s in log.samples}


@pytest.mark.parametrize("suite", SUITES)
def test_perfect_assistant_passes_every_sample(logs, suite):
    results = verdicts(logs[suite, "perfect"])
    assert set(results) == {line["id"] for line in read_lines(suite)}
    assert {sid: why for sid, (value, why) in results.items() if value != CORRECT} == {}


@pytest.mark.parametrize("suite", SUITES)
def test_wrong_assistant_fails_every_sample(logs, suite):
    results = verdicts(logs[suite, "wrong"])
    assert set(results) == {line["id"] for line in read_lines(suite)}
    assert {sid for sid, (value, _) in results.items() if value != INCORRECT} == set()
    # Each failure names a failed check.
    assert all(why.startswith("FAILED") for _, why in results.values())


def test_metrics_give_accuracy_per_tag(logs):
    perfect = logs["security", "perfect"].results.scores[0].metrics
    wrong = logs["security", "wrong"].results.scores[0].metrics
    assert perfect["accuracy"].value == 1.0 and wrong["accuracy"].value == 0.0
    assert perfect["rate-limit"].value == 1.0 and wrong["rate-limit"].value == 0.0


def test_sample_homes_are_removed(logs, sandbox):
    assert list((sandbox / "TMPDIR").glob("comfy-evals-*")) == []


def test_compare_reports_changes_and_tags(logs):
    wrong, perfect = logs["live", "wrong"], logs["live", "perfect"]
    out = subprocess.run(
        [sys.executable, str(COMPARE), wrong.location, perfect.location], capture_output=True, text=True, check=True
    ).stdout
    ids = [line["id"] for line in read_lines("live")]
    assert f"Changed samples: {len(ids)} of {len(ids)}" in out
    for sid in ids:
        assert re.search(rf"^\s+{re.escape(sid)}\s+FAIL -> PASS$", out, re.MULTILINE), out
    assert re.search(r"^\s+state-passing\s+0/3\s+3/3$", out, re.MULTILINE), out
    assert re.search(rf"^\s+\(all\)\s+0/{len(ids)}\s+{len(ids)}/{len(ids)}$", out, re.MULTILINE), out


def test_compare_of_a_log_with_itself_reports_no_change(logs):
    log = logs["static", "perfect"].location
    out = subprocess.run([sys.executable, str(COMPARE), log, log], capture_output=True, text=True, check=True).stdout
    assert "Changed samples: 0 of " in out


def test_the_static_suite_forbids_the_servers_generation_tools():
    """The tools `static` must not call come from the server's catalog
    (COMFY_MCP_BIN's `tools --category generation`)."""
    tools = queueing_tools()
    assert "comfyui_generate_image" in tools and "comfyui_run_workflow_stream" in tools
    assert "comfyui_get_queue" not in tools and "comfyui_validate_workflow" not in tools

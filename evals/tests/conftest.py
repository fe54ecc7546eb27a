"""Fixtures: a sandbox for everything Inspect and the servers write, a
comfy-sim on a free port, and one run of every suite with each scripted
assistant (shared by the tests, since a run is the slow part).

COMFY_MCP_BIN and COMFY_SIM_BIN name the built binaries."""

import os
import sys
import tempfile
from pathlib import Path

import pytest
from inspect_ai import eval
from inspect_ai.log import EvalLog

from comfy_evals.assistants import scripted_assistant
from comfy_evals.dataset import SUITES

# The fixtures the end-to-end suite starts its processes with.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bins" / "comfy-mcp" / "tests" / "python"))
import comfy_fixtures  # noqa: E402

TASKS = os.path.join(os.path.dirname(__file__), "..", "comfy_evals", "tasks.py")


@pytest.fixture(scope="session", autouse=True)
def sandbox(tmp_path_factory):
    """Points Inspect's data and cache dirs and every temporary directory
    (the servers' per-sample HOMEs) into pytest's tmp dir."""
    root = tmp_path_factory.mktemp("sandbox")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "TMPDIR"):
            (root / var).mkdir()
            mp.setenv(var, str(root / var))
        mp.setattr(tempfile, "tempdir", str(root / "TMPDIR"))
        yield root


@pytest.fixture(scope="session")
def sim_url(tmp_path_factory):
    """A comfy-sim on a free port of 127.0.0.1, stopped after the session."""
    sim, mcp = os.environ.get("COMFY_SIM_BIN"), os.environ.get("COMFY_MCP_BIN")
    assert sim and mcp, "set COMFY_MCP_BIN and COMFY_SIM_BIN to the built binaries"
    data = tmp_path_factory.mktemp("sim")
    proc, url = comfy_fixtures.start_sim(sim, data, "--steps-per-second", "500")
    yield url
    comfy_fixtures.stop(proc)


@pytest.fixture(scope="session")
def logs(sim_url, sandbox) -> dict[tuple[str, str], EvalLog]:
    """Every suite run once with the perfect and once with the wrong
    assistant, in one `eval` call; keyed by (suite, "perfect" | "wrong")."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMFYUI_URL", sim_url)
        results = eval(
            [f"{TASKS}@{suite}" for suite in SUITES],
            model=[scripted_assistant("perfect"), scripted_assistant("wrong")],
            log_dir=str(sandbox / "logs"),
            display="none",
        )
    return {(log.eval.task, log.eval.model.removeprefix("mockllm/")): log for log in results}

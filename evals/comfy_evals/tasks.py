"""Inspect AI tasks that measure how well a model uses the comfyui_* tools
end to end:

- `static`: building, validating, fixing and summarising workflows, presets
  and the prompting guide; nothing is queued (ComfyUI is still read for
  node definitions).
- `live`: multi-step chains that queue work on the ComfyUI at COMFYUI_URL.
- `security`: refused paths, an enforce-mode rejection and a rate limit.

Each sample gets its own comfy-mcp (COMFY_MCP_BIN, else `comfy-mcp` on
PATH), started over stdio by Inspect's MCP client with a fresh HOME that
holds the suite's config (evals/configs/SUITE.yaml), so rate limits and
audit logs never leak between samples. The model drives it through a
ReAct loop that ends when the model answers without calling a tool.

    inspect eval evals/comfy_evals/tasks.py@static --model anthropic/claude-sonnet-4-5
"""

import os
import sys
import tempfile
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.agent import as_solver, react
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import mcp_server_stdio

# Inspect loads this file by path, not as part of the package: make the
# package importable first.
_EVALS = Path(__file__).resolve().parents[1]
if str(_EVALS) not in sys.path:
    sys.path.insert(0, str(_EVALS))

from comfy_evals.dataset import load_suite  # noqa: E402
from comfy_evals.scorer import tool_checks  # noqa: E402
from comfy_evals.server import queueing_tools, server_command  # noqa: E402

CONFIGS = _EVALS / "configs"

INSTRUCTIONS = (
    "You operate a ComfyUI server through the comfyui_* tools. Do what the user asks "
    "with the tools, then answer in plain text."
)

# A reported prompt id or file name must come from a tool, in every suite.
GROUNDED = {"grounded": True}


@solver
def comfy_assistant(suite: str) -> Solver:
    """The model with the MCP server's tools, in a ReAct loop, against a
    comfy-mcp configured with the suite's config file."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        with tempfile.TemporaryDirectory(prefix="comfy-evals-") as home:
            settings = Path(home, ".comfyui-mcp")
            settings.mkdir()
            (settings / "config.yaml").write_text((CONFIGS / f"{suite}.yaml").read_text())
            server = mcp_server_stdio(
                name="comfy-mcp",
                command=server_command(),
                env={
                    "HOME": home,
                    "COMFYUI_URL": os.environ.get("COMFYUI_URL", "http://127.0.0.1:8188"),
                    "RUST_LOG": "warn",
                },
            )
            agent = react(prompt=INSTRUCTIONS, tools=[server], submit=False)
            return await as_solver(agent)(state, generate)

    return solve


def _suite(name: str, checks: list[dict]) -> Task:
    return Task(
        dataset=load_suite(name),
        solver=comfy_assistant(name),
        scorer=tool_checks(checks),
        message_limit=40,
    )


@task
def static() -> Task:
    """Workflows, presets and the prompting guide, without queueing work."""
    return _suite("static", [GROUNDED, {"not_called": queueing_tools()}])


@task
def live() -> Task:
    """Chains that queue work and pass results from one call to the next."""
    return _suite("live", [GROUNDED])


@task
def security() -> Task:
    """Refusals the assistant must report as refusals, without retrying blindly."""
    return _suite("security", [GROUNDED, {"no_blind_retry": True}])

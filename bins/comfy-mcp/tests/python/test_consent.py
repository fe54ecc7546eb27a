"""Consent on MCP 2026-07-28 through the Python SDK's `Client`: no session, so
enforce mode's question comes back as an input-required result, the SDK asks
the user (the elicitation callback) and calls again with the answer and the
request state. Over stdio and over stateless Streamable HTTP. (Revisions
before 2026-07-28 ask through elicitation mid-call: test_e2e.py.)"""

import anyio
import pytest
from mcp import Client, StdioServerParameters

from comfy_fixtures import stop
from conftest import MCP_BIN, accepted_then_refused, answering, audit_records, start_remote

WORKFLOW = (
    '{"1": {"class_type": "PrimitiveString", "inputs": {"value": "eval(\'1\')"}},'
    ' "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},'
    ' "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}}'
)


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_enforce_mode_asks_through_an_input_required_result(home, comfyui_url, transport):
    asked = []

    config = "security:\n  mode: enforce\n"
    proc = None
    if transport == "http":
        proc, target = start_remote(home, comfyui_url, "", config)
    else:
        (home / ".comfyui-mcp" / "config.yaml").write_text(config)
        target = StdioServerParameters(
            command=MCP_BIN, env={"HOME": str(home), "COMFYUI_URL": comfyui_url, "RUST_LOG": "warn"}
        )

    async def main(proceed):
        async with Client(target, mode="2026-07-28", elicitation_callback=answering(asked, proceed)) as client:
            assert client.protocol_version == "2026-07-28"
            return await client.call_tool("comfyui_run_workflow", {"workflow": WORKFLOW})

    try:
        accepted_then_refused(lambda proceed: anyio.run(main, proceed), asked)
    finally:
        if proc is not None:
            stop(proc)
    completed = [r for r in audit_records(home) if r["action"] == "completed"]
    assert [r["outcome"] for r in completed] == ["input_required", "ok", "input_required", "rejected"], completed

"""What the model reads, through the official MCP Python SDK, over stdio
and Streamable HTTP: a JSON-text parameter sent as the JSON itself (as
assistants often do) and as text, every problem of a bad call at once,
and every parameter described."""

import json

import anyio
import pytest

from conftest import TRANSPORT, session, structured, text


@pytest.fixture(params=["stdio", "http"], autouse=True)
def transport(request):
    TRANSPORT["name"] = request.param
    yield request.param
    TRANSPORT["name"] = "stdio"


WORKFLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "py"}},
}


def test_json_text_or_json_and_all_problems_at_once(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            as_object = structured(await s.call_tool("comfyui_validate_workflow", {"workflow": WORKFLOW}))
            as_text = structured(await s.call_tool("comfyui_validate_workflow", {"workflow": json.dumps(WORKFLOW)}))
            assert as_object == as_text and as_object["valid"] is True

            bad = await s.call_tool("comfyui_list_jobs", {"offset": -1, "sort_by": "name", "surprise": 1})
            assert bad.is_error
            message = text(bad)
            assert "3 problems" in message
            for arg in ("`offset`", "`sort_by`", "`surprise`"):
                assert arg in message, message

            for tool in (await s.list_tools()).tools:
                for name, prop in tool.input_schema.get("properties", {}).items():
                    assert len(prop.get("description", "")) > 15, f"{tool.name}.{name}"

    anyio.run(main)

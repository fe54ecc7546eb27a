"""The same server over Streamable HTTP, through the Python SDK's HTTP client."""

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import start_remote, structured, text


def test_tools_over_streamable_http_with_a_token(home, sim_url):
    proc, url = start_remote(home, sim_url, "    auth_token: t0ken\n")

    async def main():
        client = httpx2.AsyncClient(headers={"Authorization": "Bearer t0ken"}, timeout=30)
        async with streamable_http_client(url, http_client=client) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as s:
                await s.initialize()
                tools = (await s.list_tools()).tools
                assert len(tools) == 53
                page = structured(await s.call_tool("comfyui_list_nodes", {"limit": 2}))
                assert page["total"] == 571
                done = structured(await s.call_tool("comfyui_generate_image", {"prompt": "x", "steps": 2, "wait": True}))
                assert done["status"] == "completed"
                bad = await s.call_tool("comfyui_get_job", {"prompt_id": "nope"})
                assert bad.is_error and "lowercase UUID" in text(bad)

    try:
        anyio.run(main)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    records = [line for line in (home / ".comfyui-mcp" / "audit.log").read_text().splitlines() if '"called"' in line]
    assert records and all('"transport":"http"' in r for r in records)

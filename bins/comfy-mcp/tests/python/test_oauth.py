"""OAuth with a real authorization server: npm's `oidc-provider`
(installed by `cargo xtask pytest`, named by COMFY_MCP_OIDC_DIR) issues
client-credentials access tokens, and the Python SDK uses them against the
binary."""

import json
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from comfy_fixtures import stop
from conftest import TOOL_COUNT, audit_records, sim_only, start_remote, structured

OIDC_DIR = os.environ.get("COMFY_MCP_OIDC_DIR", "")
RESOURCE = "https://mcp.test/mcp"

pytestmark = [
    sim_only("generates through KSampler, which needs weights on a real ComfyUI"),
    pytest.mark.skipif(not OIDC_DIR, reason="COMFY_MCP_OIDC_DIR is not set (cargo xtask pytest installs oidc-provider)"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def issuer():
    """The authorization server on a free loopback port; its issuer URL."""
    script = Path(OIDC_DIR) / "as.mjs"
    shutil.copy(Path(__file__).parent / "oidc" / "as.mjs", script)
    proc = subprocess.Popen(
        ["node", str(script), str(free_port()), RESOURCE],
        cwd=OIDC_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = None
    for line in proc.stdout:
        if line.startswith("ISSUER "):
            url = line.split()[1]
            break
    assert url, "the authorization server did not start"
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    yield url
    stop(proc)


def token(issuer: str, client: str, scope: str) -> str:
    """An access token by the client credentials grant (RFC 6749 §4.4),
    for our resource (RFC 8707)."""
    r = httpx2.post(
        f"{issuer}/token",
        auth=(client, f"{client}-secret-0123456789"),
        data={"grant_type": "client_credentials", "scope": scope, "resource": RESOURCE},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def call_body(name: str, arguments: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": name, "arguments": arguments}}).encode()


HEADERS = {
    "MCP-Protocol-Version": "2025-11-25",
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
}


def test_client_credentials_tokens_of_a_real_authorization_server(home, comfyui_url, issuer):
    proc, url = start_remote(
        home,
        comfyui_url,
        f'    oauth:\n      issuers: ["{issuer}"]\n      resource: {RESOURCE}\n      algorithms: [ES256]\n',
    )
    reader = token(issuer, "reader", "comfyui:read")
    maker = token(issuer, "maker", "comfyui:read comfyui:generate")
    base = url.removesuffix("/mcp")

    async def main():
        async with httpx2.AsyncClient(timeout=30) as h:
            meta = (await h.get(f"{base}/.well-known/oauth-protected-resource/mcp")).json()
            assert meta["resource"] == RESOURCE
            assert meta["authorization_servers"] == [issuer]
            # No token: 401 naming the metadata.
            r = await h.post(url, headers=HEADERS, content=call_body("comfyui_get_queue", {}))
            assert r.status_code == 401
            assert 'resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"' in r.headers["www-authenticate"]
            # The reader's token may not generate: 403 with the scope to ask for.
            r = await h.post(
                url,
                headers={**HEADERS, "Authorization": f"Bearer {reader}"},
                content=call_body("comfyui_generate_image", {"prompt": "x", "steps": 2}),
            )
            assert r.status_code == 403, r.text
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
            assert 'scope="comfyui:generate"' in r.headers["www-authenticate"]

        # The reader reads through the SDK.
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {reader}"}, timeout=30)
        async with streamable_http_client(url, http_client=client) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                assert len((await s.list_tools()).tools) == TOOL_COUNT
                structured(await s.call_tool("comfyui_get_queue", {}))
        # The maker generates.
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {maker}"}, timeout=60)
        async with streamable_http_client(url, http_client=client) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                done = structured(await s.call_tool("comfyui_generate_image", {"prompt": "x", "steps": 2, "wait": True}))
                assert done["status"] == "completed"

    try:
        anyio.run(main)
    finally:
        stop(proc)
    # The audit log names each client as its issuer and subject.
    principals = {r.get("principal") for r in audit_records(home) if r["action"] == "called"}
    assert principals == {f"oauth:{issuer}#reader", f"oauth:{issuer}#maker"}, principals

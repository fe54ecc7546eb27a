"""Fixtures: a comfy-sim on a free port, and the comfy-mcp binary started
over stdio by the official MCP Python SDK. `cargo xtask pytest` sets
COMFY_MCP_BIN and COMFY_SIM_BIN to the built binaries."""

import json
import os
import subprocess
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

MCP_BIN = os.environ.get("COMFY_MCP_BIN", "")
SIM_BIN = os.environ.get("COMFY_SIM_BIN", "")


@pytest.fixture(scope="session")
def sim_url(tmp_path_factory):
    assert MCP_BIN and SIM_BIN, "run through `cargo xtask pytest` (it sets COMFY_MCP_BIN and COMFY_SIM_BIN)"
    data = tmp_path_factory.mktemp("sim")
    proc = subprocess.Popen(
        [SIM_BIN, "--port", "0", "--steps-per-second", "500", "--data-dir", str(data)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = None
    for line in proc.stderr:
        if " listening on " in line:
            url = line.split(" listening on ")[1].split()[0]
            break
    assert url, "comfy-sim did not start"
    # Keep draining its output so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def home(tmp_path):
    (tmp_path / ".comfyui-mcp").mkdir()
    return tmp_path


@asynccontextmanager
async def session(home: Path, sim_url: str, config: str = ""):
    (home / ".comfyui-mcp" / "config.yaml").write_text(config)
    params = StdioServerParameters(
        command=MCP_BIN,
        env={"HOME": str(home), "COMFYUI_URL": sim_url, "RUST_LOG": "warn"},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            yield s


def structured(result):
    assert not result.is_error, result.content[0].text
    return result.structured_content


def text(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def audit_records(home: Path):
    path = home / ".comfyui-mcp" / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()]

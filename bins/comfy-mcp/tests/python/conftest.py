"""Fixtures: the ComfyUI under test, and the comfy-mcp binary started over
stdio by the official MCP Python SDK. `cargo xtask pytest` sets
COMFY_MCP_BIN and COMFY_SIM_BIN to the built binaries.

The ComfyUI is comfy-sim, started here on a free port, unless
COMFY_MCP_TEST_COMFYUI_URL names a real server (`cargo xtask real-comfyui`
starts one and sets it; point it at your own ComfyUI to run the suite
there). COMFY_MCP_TEST_COMFYUI_DATA is then that server's
`--base-directory` (for the differential test's simulator to serve the same
model files) and COMFY_MCP_TEST_COMFYUI_VERSION its version.

Tests that need what only one of them can do say so with
`@sim_only("why")` or `@real_only("why")`; they are skipped on the other
with that reason (`pytest -rs` prints it)."""

import json
import os
import urllib.request
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

import comfy_fixtures
from comfy_fixtures import until, wait_until  # noqa: F401 (for the tests)

MCP_BIN = os.environ.get("COMFY_MCP_BIN", "")
SIM_BIN = os.environ.get("COMFY_SIM_BIN", "")
REAL_URL = os.environ.get("COMFY_MCP_TEST_COMFYUI_URL", "").rstrip("/")
REAL_DATA = os.environ.get("COMFY_MCP_TEST_COMFYUI_DATA", "")
REAL_VERSION = os.environ.get("COMFY_MCP_TEST_COMFYUI_VERSION", "")
IS_REAL = bool(REAL_URL)


def sim_only(reason):
    """Marks a test that needs the simulator (a fault knob, a simulated GPU node, ...)."""
    return pytest.mark.sim_only(reason=reason)


def real_only(reason):
    """Marks a test that needs a real ComfyUI."""
    return pytest.mark.real_only(reason=reason)


def pytest_configure(config):
    config.addinivalue_line("markers", "sim_only(reason): needs comfy-sim; skipped against a real ComfyUI")
    config.addinivalue_line("markers", "real_only(reason): needs a real ComfyUI; skipped against comfy-sim")


def pytest_report_header(config):
    if IS_REAL:
        return f"ComfyUI under test: real, {REAL_URL} (version {REAL_VERSION or 'unknown'})"
    return "ComfyUI under test: comfy-sim (set COMFY_MCP_TEST_COMFYUI_URL for a real server)"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if IS_REAL and (m := item.get_closest_marker("sim_only")):
            item.add_marker(pytest.mark.skip(reason=f"comfy-sim only: {m.kwargs['reason']}"))
        if not IS_REAL and (m := item.get_closest_marker("real_only")):
            item.add_marker(pytest.mark.skip(reason=f"real ComfyUI only: {m.kwargs['reason']}"))


def start_sim(data: Path, *args: str):
    """A comfy-sim on a free port with `args`; returns the process and its URL."""
    assert MCP_BIN and SIM_BIN, "run through `cargo xtask pytest` (it sets COMFY_MCP_BIN and COMFY_SIM_BIN)"
    return comfy_fixtures.start_sim(SIM_BIN, data, *args)


# How many tools the server lists (the Rust compatibility snapshot has the names).
TOOL_COUNT = 56


def catalog_size(comfyui_url: str) -> int:
    """How many node classes the ComfyUI under test serves in `/object_info`."""
    with urllib.request.urlopen(f"{comfyui_url}/object_info", timeout=30) as r:
        return len(json.load(r))


@dataclass
class ComfyUI:
    """The server under test."""

    url: str
    real: bool
    version: str
    data: Path | None


@pytest.fixture(scope="session")
def comfyui(tmp_path_factory):
    if IS_REAL:
        assert MCP_BIN, "run through `cargo xtask pytest` (it sets COMFY_MCP_BIN)"
        yield ComfyUI(REAL_URL, True, REAL_VERSION, Path(REAL_DATA) if REAL_DATA else None)
        return
    data = tmp_path_factory.mktemp("sim")
    proc, url = start_sim(data, "--steps-per-second", "500")
    yield ComfyUI(url, False, "", data)
    comfy_fixtures.stop(proc)


@pytest.fixture(scope="session")
def comfyui_url(comfyui):
    return comfyui.url


@pytest.fixture
def home(tmp_path):
    (tmp_path / ".comfyui-mcp").mkdir()
    return tmp_path


# Which transport `session` uses; test modules that run over both set it
# through a parametrized fixture.
TRANSPORT = {"name": "stdio"}
TOKEN = "e2e-t0ken"


@asynccontextmanager
async def session(home: Path, comfyui_url: str, config: str = "", elicitation_callback=None):
    """The server started by the SDK (stdio) or as a Streamable HTTP server
    with a bearer token, per TRANSPORT, with an initialized client session."""
    if TRANSPORT["name"] == "http":
        async with _http_session(home, comfyui_url, config, elicitation_callback) as s:
            yield s
        return
    (home / ".comfyui-mcp" / "config.yaml").write_text(config)
    params = StdioServerParameters(
        command=MCP_BIN,
        env={"HOME": str(home), "COMFYUI_URL": comfyui_url, "RUST_LOG": "warn"},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, elicitation_callback=elicitation_callback) as s:
            await s.initialize()
            yield s


def start_remote(home: Path, comfyui_url: str, extra: str = "", config: str = ""):
    """Starts the binary with the remote transport on a free port; returns
    the process and the /mcp URL."""
    (home / ".comfyui-mcp" / "config.yaml").write_text(
        config + "transport:\n  remote:\n    enabled: true\n    port: 0\n" + extra
    )
    env = dict(os.environ, HOME=str(home), COMFYUI_URL=comfyui_url, RUST_LOG="warn")
    env.pop("COMFYUI_MCP_AUTH_TOKEN", None)
    return comfy_fixtures.start_http_server(MCP_BIN, env)


@asynccontextmanager
async def _http_session(home: Path, comfyui_url: str, config: str, elicitation_callback):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    proc, url = start_remote(home, comfyui_url, f"    auth_token: {TOKEN}\n", config)
    try:
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        async with streamable_http_client(url, http_client=client) as streams:
            async with ClientSession(streams[0], streams[1], elicitation_callback=elicitation_callback) as s:
                await s.initialize()
                yield s
    finally:
        comfy_fixtures.stop(proc)


def answering(asked, proceed):
    """An elicitation callback that records each question in `asked` and
    answers `proceed` (`None`: declines)."""
    from mcp import types

    async def callback(context, params):
        asked.append(params.message)
        if proceed is None:
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content={"proceed": proceed})

    return callback


def accepted_then_refused(run, asked):
    """`run(proceed)` calls a flagged workflow in enforce mode with the user
    answering `proceed`; accepted it is submitted, refused it is blocked."""
    accepted = run(True)
    assert not accepted.is_error, text(accepted)
    assert accepted.structured_content["status"] == "submitted"
    assert asked[-1].startswith("Workflow has 1 warning(s) in enforce mode: [")
    refused = run(False)
    assert refused.is_error and text(refused).startswith("Workflow blocked by user — dangerous nodes: [")


def structured(result):
    assert not result.is_error, result.content[0].text
    return result.structured_content


def text(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def audit_records(home: Path):
    path = home / ".comfyui-mcp" / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()]

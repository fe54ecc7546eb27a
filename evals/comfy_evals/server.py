"""The comfy-mcp command the suites start (COMFY_MCP_BIN, else `comfy-mcp`
on PATH), and what the suites read from it instead of keeping lists of
their own."""

import json
import os
import subprocess


def server_command() -> str:
    """The comfy-mcp command."""
    return os.environ.get("COMFY_MCP_BIN", "comfy-mcp")


def queueing_tools() -> list[str]:
    """The tools that queue work on ComfyUI, which the static suite must not
    call: the catalog's `generation` category, as the server lists it
    (`comfy-mcp tools --category generation`)."""
    out = subprocess.run(
        [server_command(), "tools", "--category", "generation"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    names = [t["name"] for t in json.loads(out.stdout)["tools"]]
    if not names:
        raise RuntimeError("`comfy-mcp tools --category generation` listed no tools")
    return names

"""Paid API nodes against the ComfyUI under test: ComfyUI ships them
(`comfy_api_nodes`, marked `api_node` in /object_info) with no account
needed to list them, so the real 0.8.0 and 0.33.0 show them too. Nothing
here runs one: that would reach an outside service."""

import json

import anyio

from conftest import IS_REAL, REAL_VERSION, audit_records, session, structured, text

KEY = "comfyui-87d01e28d0c4a7f1e9b2356d8a0f4c1be7d9a2c6f3b5e8d1a4c7f0b3e6d9a2c5"

# OpenAIDalle3 is in every catalog under test (0.8.0's, 0.33.0's, the simulator's).
PAID = json.dumps(
    {
        "1": {"class_type": "OpenAIDalle3", "inputs": {"prompt": "a fox"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "paid"}},
    }
)


def test_api_nodes_are_listed_with_their_service(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            seen = {}
            offset = 0
            while True:
                page = structured(
                    await s.call_tool(
                        "comfyui_list_nodes",
                        {"api_node": True, "limit": 100, "offset": offset, "fields": ["service", "category", "pack"]},
                    )
                )
                for item in page["items"]:
                    seen[item["name"]] = item
                if not page["has_more"]:
                    break
                offset += len(page["items"])
            assert seen["OpenAIDalle3"]["service"] == "OpenAI", seen["OpenAIDalle3"]
            assert all(i["pack"] == "comfy_api_nodes" for i in seen.values()), seen
            # The module's helpers call nothing and are not marked.
            assert "OpenAIInputFiles" not in seen
            if IS_REAL and REAL_VERSION.startswith("0.33"):
                assert seen["OpenAIDalle3"]["category"] == "partner/image/OpenAI"
                assert seen["ClaudeNode"]["service"] == "Anthropic"
                assert len(seen) > 200, len(seen)
            if IS_REAL and REAL_VERSION.startswith("0.8"):
                assert seen["OpenAIDalle3"]["category"] == "api node/image/OpenAI"

            for tool in ("comfyui_validate_workflow", "comfyui_dry_run"):
                v = structured(await s.call_tool(tool, {"workflow": PAID}))
                assert v["api_nodes"] == [{"node": "1", "class": "OpenAIDalle3", "service": "OpenAI"}], v
                assert "charges the user's Comfy account" in v["spending"]
                assert any(f["rule"] == "node.api" for f in v["findings"]), v

    anyio.run(main)


def test_enforce_mode_asks_before_spending_and_the_key_stays_out(home, comfyui_url):
    from mcp import types

    asked = []

    async def decline(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="decline")

    async def main():
        config = f"security:\n  mode: enforce\ncomfyui:\n  api_key_comfy_org: {KEY}\n"
        async with session(home, comfyui_url, config, decline) as s:
            r = await s.call_tool("comfyui_run_workflow", {"workflow": PAID, "api_key_comfy_org": KEY})
            assert r.is_error and text(r).startswith("Workflow blocked by user"), text(r)
            assert KEY not in r.model_dump_json()
            jobs = await s.call_tool("comfyui_list_jobs", {})
            assert KEY not in jobs.model_dump_json()

    anyio.run(main)
    assert len(asked) == 1 and "Paid API node: OpenAIDalle3 (node 1)" in asked[0], asked
    assert "charges the user's Comfy account" in asked[0]
    log = (home / ".comfyui-mcp" / "audit.log").read_text()
    assert KEY not in log and audit_records(home)

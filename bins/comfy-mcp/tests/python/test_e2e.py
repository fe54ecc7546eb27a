"""comfy-mcp driven by the official MCP Python SDK against the ComfyUI under
test (comfy-sim, or a real server: see conftest.py), each test over stdio
and again over Streamable HTTP (with a bearer token)."""

import time

import anyio
import pytest

from comfy_fixtures import stop
from conftest import (
    IS_REAL,
    accepted_then_refused,
    TRANSPORT,
    answering,
    audit_records,
    catalog_size,
    session,
    sim_only,
    structured,
    text,
    until,
    wait_until,
)


@pytest.fixture(params=["stdio", "http"], autouse=True)
def transport(request):
    TRANSPORT["name"] = request.param
    yield request.param
    TRANSPORT["name"] = "stdio"


def test_tools_resources_and_discovery(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            tools = (await s.list_tools()).tools
            names = {t.name for t in tools}
            assert len(tools) >= 44 and all(n.startswith("comfyui_") for n in names)
            assert {"comfyui_generate_image", "comfyui_get_queue", "comfyui_upload_image"} <= names
            assert all(t.input_schema.get("additionalProperties") is False for t in tools)

            page = structured(await s.call_tool("comfyui_list_nodes", {"limit": 3}))
            assert len(page["items"]) == 3 and page["has_more"]
            # Every class the server under test serves, whichever version it is.
            assert page["total"] == catalog_size(comfyui_url) and page["total"] > 500
            info = structured(await s.call_tool("comfyui_get_system_info", {}))
            assert set(info) == {"comfyui_version", "devices", "queue"}

            resources = (await s.list_resources()).resources
            assert [str(r.uri) for r in resources][:2] == ["comfyui://nodes/installed", "comfyui://queue"]
            queue = await s.read_resource("comfyui://queue")
            assert '"running":0' in queue.contents[0].text

    anyio.run(main)


@sim_only("comfyui_generate_image needs a checkpoint that loads; the simulator simulates GPU nodes")
def test_generation_waits_with_progress(home, comfyui_url):
    async def main():
        seen = []

        async def on_progress(progress, total, message):
            seen.append((progress, total, message))

        async with session(home, comfyui_url) as s:
            result = await s.call_tool(
                "comfyui_generate_image",
                {"prompt": "a lighthouse", "steps": 3, "wait": True},
                progress_callback=on_progress,
            )
            done = structured(result)
            assert done["status"] == "completed"
            assert done["outputs"][0]["filename"].endswith(".png")
            # Progress counts the nodes to run; the sampler's steps add their fraction.
            assert seen and all(total == seen[0][1] for _, total, _ in seen), seen
            assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen), seen
            assert any("(KSampler)" in m and "step 3/3" in m for _, _, m in seen), seen

    anyio.run(main)


def test_bad_input_is_an_error_that_names_it(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            for tool, args, needle in [
                ("comfyui_list_models", {"limit": 0}, "`limit`"),
                ("comfyui_get_image", {"filename": "../../etc/passwd.png"}, "`filename`"),
                ("comfyui_get_job", {"prompt_id": "x"}, "lowercase UUID"),
                ("comfyui_run_workflow", {"workflow": "[]"}, "`workflow`"),
            ]:
                result = await s.call_tool(tool, args)
                assert result.is_error, (tool, args)
                assert needle in text(result), text(result)

    anyio.run(main)


def test_rate_limits_per_category_and_the_audit_log(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url, "rate_limits:\n  read_only: 2\n") as s:
            results = [await s.call_tool("comfyui_get_queue", {}) for _ in range(3)]
            assert [r.is_error for r in results] == [False, False, True]
            assert text(results[2]).startswith("Rate limit exceeded for tool 'comfyui_get_queue'. Max 2 requests/minute.")
            assert not (await s.call_tool("comfyui_interrupt", {})).is_error

    anyio.run(main)
    # The server closes its log when stdin closes, maybe after the client
    # returned: wait for its last record.
    def all_four():
        records = audit_records(home)
        return records if sum(r["action"] == "completed" for r in records) >= 4 else None

    records = wait_until(all_four, "the fourth completed record", limit=5)
    completed = [r for r in records if r["action"] == "completed"]
    assert [r["outcome"] for r in completed] == ["ok", "ok", "rate_limited", "ok"]
    assert all(r["client"].startswith("mcp") for r in completed), completed[0]


def test_enforce_mode_refuses_a_flagged_workflow(home, comfyui_url):
    workflow = (
        '{"1": {"class_type": "PrimitiveString", "inputs": {"value": "__import__(\'os\')"}},'
        ' "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},'
        ' "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}}'
    )

    async def main():
        async with session(home, comfyui_url, "security:\n  mode: enforce\n") as s:
            result = await s.call_tool("comfyui_run_workflow", {"workflow": workflow})
            assert result.is_error
            assert text(result).startswith("Workflow blocked — dangerous nodes: [")

    anyio.run(main)


def test_enforce_mode_asks_the_user_when_the_client_can(home, comfyui_url):
    workflow = (
        '{"1": {"class_type": "PrimitiveString", "inputs": {"value": "eval(\'1\')"}},'
        ' "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},'
        ' "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}}'
    )
    asked = []

    async def main(proceed):
        async with session(home, comfyui_url, "security:\n  mode: enforce\n", answering(asked, proceed)) as s:
            return await s.call_tool("comfyui_run_workflow", {"workflow": workflow})

    accepted_then_refused(lambda proceed: anyio.run(main, proceed), asked)
    declined = anyio.run(main, None)
    assert declined.is_error and text(declined).startswith("Workflow blocked by user")
    actions = [r["action"] for r in audit_records(home)]
    assert "eliciting_confirmation" in actions and "elicitation_accepted" in actions and "elicitation_declined" in actions


@sim_only("ComfyUI-Manager cannot reach its registry here; the simulator plays it")
def test_installing_a_custom_node_asks_the_user_first(home, comfyui_url, tmp_path_factory):
    """Runs against a simulator with ComfyUI-Manager (started here)."""
    from conftest import start_sim

    proc, url = start_sim(tmp_path_factory.mktemp("sim-manager"), "--manager")
    asked = []

    async def main(proceed):
        async with session(home, url, "", answering(asked, proceed)) as s:
            return await s.call_tool("comfyui_install_custom_node", {"node_id": "comfyui-easynodes"})

    try:
        declined = anyio.run(main, False)
        assert declined.is_error and text(declined) == "The user declined to install node pack 'comfyui-easynodes'"
        assert asked[-1].startswith("Install custom node pack 'comfyui-easynodes' on the ComfyUI server?")
        accepted = anyio.run(main, True)
        assert not accepted.is_error, text(accepted)
        assert text(accepted).startswith("Node pack 'comfyui-easynodes' operation completed.")

        # With Manager there, a missing class names the pack that provides it.
        workflow = (
            '{"1": {"class_type": "ImpactWildcardProcessor", "inputs": {"wildcard_text": "x"}},'
            ' "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},'
            ' "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}}'
        )

        async def missing():
            async with session(home, url) as s:
                return await s.call_tool("comfyui_run_workflow", {"workflow": workflow})

        refused = anyio.run(missing)
        assert refused.is_error
        hint = refused.structured_content["verdict"]["problems"][0]["hint"]
        assert hint["packs"][0]["title"] == "Impact Pack", hint
    finally:
        stop(proc)


def test_filtered_discovery_and_compact_node_info(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            page = structured(
                await s.call_tool(
                    "comfyui_list_nodes",
                    {"input_type": "LATENT", "output_type": "IMAGE", "fields": ["pack", "category"], "limit": 50},
                )
            )
            names = [i["name"] for i in page["items"]]
            assert "VAEDecode" in names and page["total"] < 50, page
            assert all(set(i) == {"name", "pack", "category"} for i in page["items"])
            info = structured(await s.call_tool("comfyui_get_node_info", {"node_class": "EmptyLatentImage"}))
            assert [i["name"] for i in info["inputs"]] == ["width", "height", "batch_size"]
            assert info["outputs"] == [{"index": 0, "name": "LATENT", "type": "LATENT", "is_list": False}]
            raw = structured(await s.call_tool("comfyui_get_node_info", {"node_class": "EmptyLatentImage", "raw": True}))
            assert "input" in raw and "inputs" not in raw

    anyio.run(main)


def test_job_limits_are_named_before_anything_is_queued(home, comfyui_url):
    workflow = (
        '{"1": {"class_type": "EmptyImage", "inputs": {"width": 4096, "height": 4096, "batch_size": 32, "color": 0}},'
        ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}'
    )

    async def main():
        async with session(home, comfyui_url, "limits:\n  max_batch_size: 8\n") as s:
            checked = structured(await s.call_tool("comfyui_validate_workflow", {"workflow": workflow}))
            assert "Node 1 (EmptyImage): batch_size 32 is over the limit limits.max_batch_size = 8" in checked["warnings"]
        async with session(home, comfyui_url, "limits:\n  max_batch_size: 8\nsecurity:\n  mode: enforce\n") as s:
            result = await s.call_tool("comfyui_run_workflow", {"workflow": workflow})
            assert result.is_error
            assert text(result).startswith("Workflow blocked — over the job limits: Node 1 (EmptyImage): batch_size 32")

    anyio.run(main)


def test_oversized_results_are_trimmed_and_refusals_carry_hints(home, comfyui_url):
    workflow = (
        '{"1": {"class_type": "EmptyImage", "inputs": {"width": 100000, "height": 8, "batch_size": 1, "color": 0}},'
        ' "2": {"class_type": "SaveImag", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}'
    )

    async def main():
        async with session(home, comfyui_url, "server:\n  max_inline_bytes: 3000\n") as s:
            result = await s.call_tool("comfyui_list_nodes", {"fields": ["description"], "limit": 100})
            page = structured(result)
            assert 0 < len(page["items"]) < 100 and page["has_more"]
            assert len(result.content[0].text) <= 3000
            assert f"Continue with offset={len(page['items'])}" in result.content[1].text

            result = await s.call_tool("comfyui_run_workflow", {"workflow": workflow})
            assert result.is_error
            verdict = result.structured_content["verdict"]
            assert verdict["problems"][0]["hint"]["closest"] == "SaveImage", verdict
            assert "closest installed one is 'SaveImage'" in text(result)

    anyio.run(main)


def test_outputs_as_resources_and_upload_sources(home, comfyui_url):
    import base64

    workflow = (
        '{"1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 7}},'
        ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "py"}}}'
    )

    async def main():
        async with session(home, comfyui_url) as s:
            done = structured(await s.call_tool("comfyui_run_workflow", {"workflow": workflow, "wait": True}))
            uri = done["outputs"][0]["uri"]
            assert uri == f"comfyui://output/{done['prompt_id']}/0"
            read = await s.read_resource(uri)
            blob = base64.b64decode(read.contents[0].blob)
            assert blob.startswith(b"\x89PNG") and read.contents[0].mime_type == "image/png"
            data_uri = "data:image/png;base64," + base64.b64encode(blob).decode()
            up = await s.call_tool("comfyui_upload_image", {"filename": "py_in.png", "image_data": data_uri})
            assert text(up) == "Uploaded py_in.png to ComfyUI input directory", text(up)
            up = await s.call_tool("comfyui_upload_image", {"filename": "py_in2.png", "image_data": uri})
            assert not up.is_error, text(up)
            # The resource as this client read it is an upload source too.
            held = read.contents[0].model_dump_json(by_alias=True, exclude_none=True)
            up = await s.call_tool("comfyui_upload_image", {"filename": "py_in3.png", "image_data": held})
            assert text(up) == "Uploaded py_in3.png to ComfyUI input directory", text(up)

    anyio.run(main)


def test_url_uploads_are_off_by_default_and_refuse_private_addresses(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            r = await s.call_tool("comfyui_upload_image", {"filename": "u.png", "image_data": "https://example.com/u.png"})
            assert r.is_error and "security.allowed_fetch_domains" in text(r), text(r)
        async with session(home, comfyui_url, 'security:\n  allowed_fetch_domains: ["*"]\n') as s:
            for url in ["https://127.0.0.1/x.png", "https://169.254.169.254/latest", "https://[::1]/x.png"]:
                r = await s.call_tool("comfyui_upload_image", {"filename": "u.png", "image_data": url})
                assert r.is_error and "not a public address" in text(r), (url, text(r))

    anyio.run(main)


def test_dry_run_expands_tokens_and_queues_nothing(home, comfyui_url):
    workflow = (
        '{"1": {"class_type": "EmptyImage", "inputs": {"width": 48, "height": 8, "batch_size": 1, "color": 0},'
        ' "_meta": {"title": "Canvas"}},'
        ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "w%Canvas.width%"}}}'
    )

    async def main():
        async with session(home, comfyui_url) as s:
            before = structured(await s.call_tool("comfyui_get_queue_status", {}))
            v = structured(await s.call_tool("comfyui_dry_run", {"workflow": workflow}))
            assert v["queued"] is False and v["valid"] is True, v
            assert v["changes"] == [{"node": "2", "input": "filename_prefix", "from": "w%Canvas.width%", "to": "w48"}]
            assert v["workflow"]["2"]["inputs"]["filename_prefix"] == "w48"
            after = structured(await s.call_tool("comfyui_get_queue_status", {}))
            assert before == after

    anyio.run(main)


def test_the_watchdog_interrupts_a_job_that_stops_progressing(home, comfyui_url):
    # FixtureSleep: a node that sits silent for a minute.
    workflow = (
        '{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},'
        ' "2": {"class_type": "FixtureSleep", "inputs": {"image": ["1", 0], "seconds": 60, "seed": %d}},'
        ' "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "sleepy"}}}'
    )

    async def main():
        async with session(home, comfyui_url, "server:\n  stall_timeout: 2\n") as s:
            started = time.monotonic()
            done = structured(await s.call_tool("comfyui_run_workflow", {"workflow": workflow % 1, "wait": True}))
            assert done["status"] == "stalled", done
            assert "no progress for 2 s" in done["message"]
            assert time.monotonic() - started < 20
            submitted = structured(await s.call_tool("comfyui_run_workflow", {"workflow": workflow % 2}))

            async def stalled():
                return any(r["action"] == "stalled" and r.get("prompt_id") == submitted["prompt_id"] for r in audit_records(home))

            await until(stalled, "the job submitted without wait to be stalled")

    anyio.run(main)


# Defects found against real ComfyUI servers (issue 24): each runs on the
# simulator and on a real server.

def _image_job(color, prefix="hist"):
    return (
        '{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": %d}},'
        ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "%s"}}}' % (color, prefix)
    )


def test_history_pages_newest_first(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            ids = []
            for color in (11, 12, 13, 14):
                done = structured(await s.call_tool("comfyui_run_workflow", {"workflow": _image_job(color), "wait": True}))
                assert done["status"] == "completed", done
                ids.append(done["prompt_id"])
            newest = ids[::-1]
            first = structured(await s.call_tool("comfyui_get_history", {"limit": 2}))
            assert [i["prompt_id"] for i in first["items"]] == newest[:2], first
            assert first["has_more"] is True
            second = structured(await s.call_tool("comfyui_get_history", {"limit": 2, "offset": 2}))
            assert [i["prompt_id"] for i in second["items"]] == newest[2:4], second

    anyio.run(main)


def test_an_unknown_subgraph_is_not_available(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            result = await s.call_tool("comfyui_get_subgraph", {"subgraph_id": "no-such-blueprint"})
            assert not result.is_error, text(result)
            assert result.structured_content == {"available": False, "subgraph_id": "no-such-blueprint"}

    anyio.run(main)


def test_an_interrupted_job_reports_interrupted(home, comfyui_url):
    workflow = (
        '{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},'
        ' "2": {"class_type": "FixtureSleep", "inputs": {"image": ["1", 0], "seconds": 30, "seed": %d}},'
        ' "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}' % int(time.time() * 1000)
    )

    async def main():
        async with session(home, comfyui_url) as s:
            submitted = structured(await s.call_tool("comfyui_run_workflow", {"workflow": workflow}))
            pid = submitted["prompt_id"]
            async def sleeping():
                state = structured(await s.call_tool("comfyui_get_progress", {"prompt_id": pid}))
                return state if state["status"] == "running" and "FixtureSleep" in state.get("current_node", "") else None

            state = await until(sleeping, "the job to run its FixtureSleep node", limit=10)
            # It names the running node (this server follows the job's events).
            assert state["status"] == "running" and state["current_node"] == "node 2 (FixtureSleep)", state
            assert not (await s.call_tool("comfyui_interrupt", {"prompt_id": pid})).is_error
            async def ended():
                state = structured(await s.call_tool("comfyui_get_progress", {"prompt_id": pid}))
                return state if state["status"] not in ("running", "queued") else None

            state = await until(ended, "the interrupted job to end", limit=10)
            assert state["status"] == "interrupted", state

    anyio.run(main)


def test_a_failed_model_search_names_the_service(home, comfyui_url):
    import socket

    # A port on 127.0.0.1 that nothing listens on.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    config = f'model_search:\n  huggingface_api_base: "{closed}"\n  civitai_api_base: "{closed}"\n'

    async def main():
        async with session(home, comfyui_url, config) as s:
            for source, service in [("huggingface", "HuggingFace"), ("civitai", "CivitAI")]:
                r = await s.call_tool("comfyui_search_models", {"query": "sdxl", "source": source})
                assert r.is_error, text(r)
                assert text(r).startswith(f"{service} search failed: cannot reach the {service} API"), text(r)
                assert "ComfyUI" not in text(r), text(r)

    anyio.run(main)


def test_preview_outputs_are_fetchable(home, comfyui_url):
    workflow = (
        '{"1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": %d}},'
        ' "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}' % (int(time.time() * 1000) % 0xFFFFFF)
    )

    async def main():
        async with session(home, comfyui_url) as s:
            done = structured(await s.call_tool("comfyui_run_workflow", {"workflow": workflow, "wait": True}))
            out = done["outputs"][0]
            assert out["type"] == "temp", out
            image = await s.call_tool(
                "comfyui_get_image", {"filename": out["filename"], "subfolder": out["subfolder"], "type": out["type"]}
            )
            assert not image.is_error, text(image)
            assert image.structured_content["result"].startswith("data:image/png;base64,")
            # The resource named by the output reads it too.
            read = await s.read_resource(out["uri"])
            assert read.contents[0].mime_type == "image/png"

    anyio.run(main)


def test_a_waited_run_reports_every_node_that_starts(home, comfyui_url):
    """No sampler: progress still comes, one notification per node (issue 24)."""
    import json as _json

    color = int(time.time() * 1000) % 0xFFFFFF
    nodes = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}}}
    for i in range(2, 40):
        nodes[str(i)] = {"class_type": "ImageInvert", "inputs": {"image": [str(i - 1), 0]}, "_meta": {"title": f"Flip {i}"}}
    nodes["40"] = {"class_type": "SaveImage", "inputs": {"images": ["39", 0], "filename_prefix": "chain"}}
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async def main():
        async with session(home, comfyui_url) as s:
            done = structured(await s.call_tool(
                "comfyui_run_workflow", {"workflow": _json.dumps(nodes), "wait": True}, progress_callback=on_progress))
            assert done["status"] == "completed", done

    anyio.run(main)
    started = [m for _, _, m in seen if m.endswith("nodes done)") and " started " in m]
    assert len(started) == 40, seen
    assert 'node 2 (ImageInvert "Flip 2") started (1 of 40 nodes done)' in started, started
    assert all(total == 40.0 for _, total, _ in seen)

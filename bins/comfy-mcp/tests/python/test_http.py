"""The same server over Streamable HTTP, through the Python SDK's HTTP client."""

import json

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from comfy_fixtures import start_redis, stop
from conftest import TOOL_COUNT, catalog_size, sim_only, start_remote, structured, text, until

# These generate through a sampler (or share a Redis): the simulator's GPU nodes.
pytestmark = sim_only("generates through KSampler, which needs weights on a real ComfyUI")


def test_tools_over_streamable_http_with_a_token(home, comfyui_url):
    proc, url = start_remote(home, comfyui_url, "    auth_token: t0ken\n")

    async def main():
        client = httpx2.AsyncClient(headers={"Authorization": "Bearer t0ken"}, timeout=30)
        async with streamable_http_client(url, http_client=client) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as s:
                await s.initialize()
                tools = (await s.list_tools()).tools
                assert len(tools) == TOOL_COUNT
                page = structured(await s.call_tool("comfyui_list_nodes", {"limit": 2}))
                assert page["total"] == catalog_size(comfyui_url)
                done = structured(await s.call_tool("comfyui_generate_image", {"prompt": "x", "steps": 2, "wait": True}))
                assert done["status"] == "completed"
                bad = await s.call_tool("comfyui_get_job", {"prompt_id": "nope"})
                assert bad.is_error and "lowercase UUID" in text(bad)

    try:
        anyio.run(main)
    finally:
        stop(proc)
    records = [line for line in (home / ".comfyui-mcp" / "audit.log").read_text().splitlines() if '"called"' in line]
    assert records and all('"transport":"http"' in r for r in records)


def client_for(url):
    """`as_client(token, body)`: runs `body(session)` in a session with that token."""

    async def as_client(token, body):
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with streamable_http_client(url, http_client=client) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                return await body(s)

    return as_client


ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789abc"


def test_one_principal_cannot_reach_another_principals_jobs(home, comfyui_url):
    proc, url = start_remote(home, comfyui_url, f"    auth_tokens:\n      alice: {ALICE}\n      bob: {BOB}\n")

    as_client = client_for(url)

    async def main():
        async def alice_generates(s):
            return structured(await s.call_tool("comfyui_generate_image", {"prompt": "x", "steps": 2, "wait": True}))

        done = await as_client(ALICE, alice_generates)
        job, image = done["prompt_id"], done["outputs"][0]["filename"]

        async def bob_tries(s):
            for tool, args in [
                ("comfyui_get_job", {"prompt_id": job}),
                ("comfyui_get_progress", {"prompt_id": job}),
                ("comfyui_cancel_job", {"prompt_id": job}),
                ("comfyui_cancel_jobs", {"job_ids": [job]}),
                ("comfyui_interrupt", {"prompt_id": job}),
            ]:
                r = await s.call_tool(tool, args)
                assert r.is_error and f"has no job {job}" in text(r), (tool, text(r))
            r = await s.call_tool("comfyui_get_image", {"filename": image})
            assert r.is_error and "among your jobs' outputs" in text(r), text(r)
            for tool in ["comfyui_clear_queue", "comfyui_interrupt"]:
                r = await s.call_tool(tool, {})
                assert r.is_error and "comfyui_cancel_jobs" in text(r) or "prompt_id" in text(r), text(r)
            # Assets have no owner: no listing, and a hash is no file of one's own.
            r = await s.call_tool("comfyui_list_assets", {})
            assert r.is_error and "kept apart" in text(r), text(r)
            r = await s.call_tool("comfyui_get_image", {"filename": "blake3:" + "0" * 64})
            assert r.is_error and "among your jobs' outputs" in text(r), text(r)
            history = structured(await s.call_tool("comfyui_get_history", {}))
            assert all(e["prompt_id"] != job for e in history["items"]), history
            outputs = structured(await s.call_tool("comfyui_list_outputs", {}))
            assert all(o["filename"] != image for o in outputs["items"]), outputs
            jobs = structured(await s.call_tool("comfyui_list_jobs", {}))
            assert all(j["id"] != job for j in jobs["jobs"]), jobs

        await as_client(BOB, bob_tries)

        async def alice_reads(s):
            assert structured(await s.call_tool("comfyui_get_job", {"prompt_id": job}))["id"] == job
            assert not (await s.call_tool("comfyui_get_image", {"filename": image})).is_error
            outputs = structured(await s.call_tool("comfyui_list_outputs", {}))
            assert any(o["filename"] == image for o in outputs["items"]), outputs
            history = structured(await s.call_tool("comfyui_get_history", {}))
            assert [e["prompt_id"] for e in history["items"]] == [job], history

        await as_client(ALICE, alice_reads)

    try:
        anyio.run(main)
    finally:
        stop(proc)
    records = [json.loads(line) for line in (home / ".comfyui-mcp" / "audit.log").read_text().splitlines()]
    calls = [r for r in records if r["action"] == "called"]
    assert {r.get("principal") for r in calls} == {"alice", "bob"}
    assert all(len(r["session"]) == 8 for r in calls), calls[0]
    refused = [r for r in records if r["action"] == "completed" and r.get("principal") == "bob" and r["tool"] == "comfyui_get_job"]
    assert refused and refused[0]["outcome"] == "rejected"


def test_shared_jobs_when_configured(home, comfyui_url):
    proc, url = start_remote(
        home, comfyui_url, f"    share_jobs: true\n    auth_tokens:\n      alice: {ALICE}\n      bob: {BOB}\n"
    )

    as_client = client_for(url)

    async def main():
        async def alice_generates(s):
            return structured(await s.call_tool("comfyui_generate_image", {"prompt": "x", "steps": 2, "wait": True}))

        job = (await as_client(ALICE, alice_generates))["prompt_id"]

        async def bob_reads(s):
            return structured(await s.call_tool("comfyui_get_job", {"prompt_id": job}))

        assert (await as_client(BOB, bob_reads))["id"] == job

    try:
        anyio.run(main)
    finally:
        stop(proc)


def test_one_client_may_have_only_so_many_jobs_queued(home, comfyui_url):
    # Long jobs (5,000 steps at 500 steps/s), so they stay queued. Each
    # submission has its own seed: ComfyUI (and the simulator) cache node
    # outputs, so a repeat of a job that once ran to the end would finish
    # at once and leave the queue before the next submission counts it.
    seeds = iter(range(1000, 2000))

    def workflow():
        return json.dumps({
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
            "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["1", 1]}},
            "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
                  "latent_image": ["3", 0], "seed": next(seeds), "steps": 5000, "cfg": 7.0, "sampler_name": "euler",
                  "scheduler": "normal", "denoise": 1.0}},
            "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
            "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "fair"}},
        })
    proc, url = start_remote(
        home,
        comfyui_url,
        f"    max_queued_jobs_per_client: 2\n    auth_tokens:\n      alice: {ALICE}\n      bob: {BOB}\n",
        # The queue is polled below: keep the read-only bucket out of the way.
        "limits:\n  max_steps: 0\nrate_limits:\n  read_only: 1000\n",
    )

    as_client = client_for(url)

    async def main():
        started = {}

        async def alice(s):
            ids = []
            for _ in range(2):
                ids.append(structured(await s.call_tool("comfyui_run_workflow", {"workflow": workflow()}))["prompt_id"])
            third = await s.call_tool("comfyui_run_workflow", {"workflow": workflow()})
            assert third.is_error and "max_queued_jobs_per_client = 2" in text(third), text(third)
            started["alice"] = ids

        async def bob(s):
            # Another client is not held back by Alice's jobs.
            started["bob"] = [structured(await s.call_tool("comfyui_run_workflow", {"workflow": workflow()}))["prompt_id"]]

        await as_client(ALICE, alice)
        await as_client(BOB, bob)

        async def cancel(token, ids):
            async def body(s):
                r = structured(await s.call_tool("comfyui_cancel_jobs", {"job_ids": ids}))
                return r

            return await as_client(token, body)

        await cancel(ALICE, started["alice"])
        await cancel(BOB, started["bob"])

        # An interrupted job can show as running for a moment: wait until
        # none of Alice's jobs is left in the queue.
        async def alice_queue_empty(s):
            async def empty():
                q = structured(await s.call_tool("comfyui_get_queue", {}))
                return not q["queue_running"] and not q["queue_pending"]

            await until(empty, "Alice's jobs to leave the queue")

        await as_client(ALICE, alice_queue_empty)

        # Simultaneous submissions cannot all pass the cap.
        async def alice_at_once(s):
            results = []

            async def one():
                results.append(await s.call_tool("comfyui_run_workflow", {"workflow": workflow()}))

            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(one)
            accepted = [r.structured_content["prompt_id"] for r in results if not r.is_error]
            refused = [r for r in results if r.is_error]
            assert len(accepted) == 2 and len(refused) == 2, [text(r) for r in results]
            started["alice"] = accepted

        await as_client(ALICE, alice_at_once)
        # Leave the shared simulator idle for the next test.
        await cancel(ALICE, started["alice"])

    try:
        anyio.run(main)
    finally:
        stop(proc)


def test_replicas_share_job_owners_through_redis(tmp_path, comfyui_url):
    """Two replicas over one Redis: a job is its owner's through either."""
    import pytest

    started = start_redis()
    if started is None:
        pytest.skip("redis-server is not installed")
    redis, redis_url = started
    procs = []
    try:
        urls = []
        for name in ("one", "two"):
            home = tmp_path / name
            (home / ".comfyui-mcp").mkdir(parents=True)
            proc, url = start_remote(
                home,
                comfyui_url,
                f"    auth_tokens:\n      alice: {ALICE}\n      bob: {BOB}\n",
                f"state:\n  redis_url: {redis_url}\n",
            )
            procs.append(proc)
            urls.append(url)
        one, two = client_for(urls[0]), client_for(urls[1])

        async def main():
            async def alice_generates(s):
                return structured(await s.call_tool("comfyui_generate_image", {"prompt": "x", "steps": 2, "wait": True}))

            job = (await one(ALICE, alice_generates))["prompt_id"]

            async def reads(s):
                return await s.call_tool("comfyui_get_job", {"prompt_id": job})

            mine = await two(ALICE, reads)
            assert not mine.is_error, text(mine)
            assert structured(mine)["id"] == job
            theirs = await two(BOB, reads)
            assert theirs.is_error and "has no job" in text(theirs), text(theirs)

            async def bob_lists(s):
                return structured(await s.call_tool("comfyui_list_jobs", {}))

            assert all(j["id"] != job for j in (await two(BOB, bob_lists))["jobs"])

        anyio.run(main)
    finally:
        for proc in procs + [redis]:
            stop(proc)


async def _list_then_end(url, session_id, token=None):
    """A raw client's `tools/list` and then DELETE on `session_id`, with
    `token` if given; both answers."""
    headers = {
        "Mcp-Session-Id": session_id,
        "MCP-Protocol-Version": "2025-11-25",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(timeout=30) as raw:
        listed = await raw.post(url, headers=headers, content=b'{"jsonrpc":"2.0","id":9,"method":"tools/list"}')
        ended = await raw.delete(url, headers=headers)
    return listed, ended


def test_a_session_answers_only_the_principal_that_opened_it(home, comfyui_url):
    proc, url = start_remote(home, comfyui_url, f"    auth_tokens:\n      alice: {ALICE}\n      bob: {BOB}\n")

    seen = []

    async def keep_session(response):
        if "mcp-session-id" in response.headers:
            seen.append(response.headers["mcp-session-id"])

    async def main():
        client = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {ALICE}"}, timeout=30, event_hooks={"response": [keep_session]}
        )
        async with streamable_http_client(url, http_client=client) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                assert seen
                hers = seen[0]
                listed, ended = await _list_then_end(url, hers, BOB)
                assert listed.status_code == 404, listed.text
                assert "comfyui_" not in listed.text
                assert ended.status_code == 404
                # Alice's session lived through it.
                assert len((await s.list_tools()).tools) == TOOL_COUNT

    try:
        anyio.run(main)
    finally:
        stop(proc)


def test_ending_a_session_is_clean_and_final(home, comfyui_url, caplog):
    proc, url = start_remote(home, comfyui_url, "")
    seen = []
    ended = []

    async def watch(response):
        request = response.request
        if "mcp-session-id" in response.headers:
            seen.append(response.headers["mcp-session-id"])
        if request.method == "DELETE":
            ended.append(response.status_code)

    async def main():
        client = httpx2.AsyncClient(timeout=30, event_hooks={"response": [watch]})
        async with streamable_http_client(url, http_client=client) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                assert len((await s.list_tools()).tools) == TOOL_COUNT
        # Leaving the client sent DELETE; the SDK took the answer as a clean end.
        assert ended == [204], ended
        assert seen
        after, again = await _list_then_end(url, seen[0])
        assert after.status_code == 404, after.text
        assert again.status_code == 404, again.text

    with caplog.at_level("DEBUG"):
        try:
            anyio.run(main)
        finally:
            stop(proc)
    assert not [r for r in caplog.records if "Session termination failed" in r.getMessage()], caplog.text

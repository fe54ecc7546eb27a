"""Cancelling jobs by id through the MCP tools: a queued job and a running
one, with comfyui_cancel_job and comfyui_cancel_jobs, against the ComfyUI
under test (and, on the simulator, also against comfy-sim as 0.8.0).

ComfyUI 0.33.0 is sent its cancel route, 0.8.0 an interrupt and a queue
delete. Which one reached the server is read from the server's own log
(`/internal/logs`): ComfyUI writes `Cancelling running prompt <id>` and
`Cancelling pending prompt <id>` for the route, `Interrupting prompt <id>`
for the interrupt, and comfy-sim writes the same lines."""

import json
import time
import urllib.request

import anyio

from comfy_fixtures import stop
from conftest import IS_REAL, REAL_VERSION, session, sim_only, start_sim, structured, text, until

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _sleeper(seed: int) -> str:
    return json.dumps(
        {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
            "2": {"class_type": "FixtureSleep", "inputs": {"image": ["1", 0], "seconds": 30, "seed": seed}},
            "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
        }
    )


def _log(url: str) -> str:
    with urllib.request.urlopen(f"{url}/internal/logs", timeout=30) as r:
        return json.load(r)


async def _progress(s, pid):
    return structured(await s.call_tool("comfyui_get_progress", {"prompt_id": pid}))


async def _until(s, pid, wanted, what):
    async def probe():
        state = await _progress(s, pid)
        return state if state["status"] in wanted else None

    return await until(probe, f"{pid} to become {what}")


async def _two_jobs(s):
    """A running sleeper and a queued one behind it."""
    seed = int(time.time() * 1000)
    first = structured(await s.call_tool("comfyui_run_workflow", {"workflow": _sleeper(seed)}))["prompt_id"]
    second = structured(await s.call_tool("comfyui_run_workflow", {"workflow": _sleeper(seed + 1)}))["prompt_id"]
    await _until(s, first, ("running",), "running")
    assert (await _progress(s, second))["status"] == "queued"
    return first, second


def _cancel_queued_and_running(home, url, version):
    async def main():
        async with session(home, url) as s:
            running, queued = await _two_jobs(s)
            r = await s.call_tool("comfyui_cancel_job", {"prompt_id": queued})
            assert text(r) == f"Cancelled job {queued}", text(r)
            r = await s.call_tool("comfyui_cancel_job", {"prompt_id": running})
            assert text(r) == f"Cancelled job {running}", text(r)
            assert (await _until(s, running, ("interrupted",), "interrupted"))["status"] == "interrupted"
            queue = structured(await s.call_tool("comfyui_get_queue", {}))
            assert queued not in json.dumps(queue), queue
            # Cancelling it again: it is neither running nor queued.
            again = await s.call_tool("comfyui_cancel_job", {"prompt_id": running})
            assert again.is_error and "neither running nor queued" in text(again), text(again)

            # Several at once, one of them twice and one unknown.
            running2, queued2 = await _two_jobs(s)
            ids = [queued2, running2, UNKNOWN, queued2]
            batch = structured(await s.call_tool("comfyui_cancel_jobs", {"job_ids": ids}))
            assert batch["job_ids"] == ids, batch
            assert batch["result"] == {
                queued2: "removed from the queue",
                running2: "interrupted",
                UNKNOWN: "not queued or running",
            }, batch
            assert batch["cancelled"] == 2, batch
            await _until(s, running2, ("interrupted",), "interrupted")

        log = _log(url)
        if version.startswith("0.8"):
            for pid in (running, running2):
                assert f"Interrupting prompt {pid}" in log, log[-2000:]
            assert "Cancelling running prompt" not in log and "Cancelling pending prompt" not in log, log[-2000:]
        else:
            for pid in (running, running2):
                assert f"Cancelling running prompt {pid}" in log, log[-2000:]
                assert f"Interrupting prompt {pid}" not in log, log[-2000:]
            for pid in (queued, queued2):
                assert f"Cancelling pending prompt {pid}" in log, log[-2000:]

    anyio.run(main)


def test_a_queued_and_a_running_job_are_cancelled_by_id(home, comfyui_url):
    # The simulator under test answers as 0.33.0 unless told otherwise.
    _cancel_queued_and_running(home, comfyui_url, REAL_VERSION if IS_REAL else "0.33.0")


@sim_only("starts its own comfy-sim as ComfyUI 0.8.0; the real 0.8.0 runs the test above")
def test_on_0_8_jobs_are_cancelled_by_interrupt_and_queue_delete(home, tmp_path):
    proc, url = start_sim(tmp_path, "--steps-per-second", "500", "--comfyui-version", "0.8.0")
    try:
        _cancel_queued_and_running(home, url, "0.8.0")
    finally:
        stop(proc)


def test_cancel_jobs_takes_at_most_a_thousand_ids(home, comfyui_url):
    ids = [f"00000000-0000-4000-8000-{i:012x}" for i in range(1001)]

    async def main():
        async with session(home, comfyui_url) as s:
            r = await s.call_tool("comfyui_cancel_jobs", {"job_ids": ids})
            assert r.is_error and "at most 1000" in text(r), text(r)
            ok = structured(await s.call_tool("comfyui_cancel_jobs", {"job_ids": ids[:1000]}))
            assert ok["cancelled"] == 0 and len(ok["result"]) == 1000, ok["cancelled"]

    anyio.run(main)

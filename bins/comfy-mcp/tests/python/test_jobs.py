"""comfyui_list_jobs passes status filters, sort order and paging to
ComfyUI's /api/jobs (0.8.0 and 0.33.0 both serve it; `cancelled` is
0.33.0's), against the ComfyUI under test."""

import json

import anyio

from conftest import IS_REAL, REAL_VERSION, session, structured, text


def _wf(prefix: str) -> str:
    return json.dumps(
        {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
        }
    )


def test_filters_sorting_and_paging_reach_the_server(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            ids = []
            for i in range(3):
                r = structured(await s.call_tool("comfyui_run_workflow", {"workflow": _wf(f"jobs{i}"), "wait": True}))
                assert r["status"] == "completed", r
                ids.append(r["prompt_id"])

            desc = structured(await s.call_tool("comfyui_list_jobs", {"status": ["completed"]}))
            mine = [j["id"] for j in desc["jobs"] if j["id"] in ids]
            assert mine == ids[::-1], (mine, ids)
            assert all(j["status"] == "completed" for j in desc["jobs"])

            asc = structured(await s.call_tool("comfyui_list_jobs", {"status": ["completed"], "sort_order": "asc"}))
            assert [j["id"] for j in asc["jobs"] if j["id"] in ids] == ids

            total = desc["pagination"]["total"]
            page = structured(
                await s.call_tool("comfyui_list_jobs", {"status": ["completed"], "limit": 1, "offset": 1})
            )
            assert page["pagination"] == {"offset": 1, "limit": 1, "total": total, "has_more": total > 2}, page
            assert [j["id"] for j in page["jobs"]] == [desc["jobs"][1]["id"]]

            none = structured(await s.call_tool("comfyui_list_jobs", {"status": ["pending", "in_progress"]}))
            assert all(j["id"] not in ids for j in none["jobs"])

            cancelled = await s.call_tool("comfyui_list_jobs", {"status": ["cancelled"]})
            if IS_REAL and REAL_VERSION.startswith("0.8"):
                # 0.8.0 has no such state; ComfyUI's own refusal comes back.
                assert cancelled.is_error and "cancelled" in text(cancelled), text(cancelled)
            else:
                assert all(j["status"] == "cancelled" for j in structured(cancelled)["jobs"])

    anyio.run(main)

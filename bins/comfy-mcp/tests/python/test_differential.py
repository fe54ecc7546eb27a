"""The differential test: the same ComfyUI requests to comfy-sim and to the
real server under test, compared by shape (status, content type, JSON keys
and value types; not values such as ids, times or sizes).

Every exchange that differs is printed. The test fails on a difference that
`docs/compatibility.md` does not list as deliberate (section "comfy-sim and
real ComfyUI", one row per exchange name and version); a listed exchange
that no longer differs fails too, so the list stays true."""

import json
import re
from contextlib import contextmanager
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from comfy_fixtures import stop
from conftest import IS_REAL, REAL_VERSION, real_only, start_sim, wait_until

DOC = Path(__file__).resolve().parents[4] / "docs" / "compatibility.md"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def call(base, method, path, body=None):
    """(status, content type, parsed body or None)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        resp = urllib.request.urlopen(req, timeout=30)
        status, headers, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
    try:
        parsed = json.loads(raw) if ctype == "application/json" else None
    except ValueError:
        parsed = "<invalid json>"
    return status, ctype, parsed


def shape(v, depth=0):
    """A value's shape: types, object keys, and the union of array element
    shapes; object keys that are ids (UUIDs, numbers) or model/node names
    are folded into one."""
    if depth > 6:
        return "..."
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        elems = sorted({json.dumps(shape(e, depth + 1), sort_keys=True) for e in v})
        return ["list", *[json.loads(e) for e in elems]]
    out = {}
    for k, val in v.items():
        key = "<id>" if UUID.match(k) or k.isdigit() else k
        s = shape(val, depth + 1)
        if key in out and out[key] != s:
            s = {"<mixed>": sorted([json.dumps(out[key], sort_keys=True), json.dumps(s, sort_keys=True)])}
        out[key] = s
    return out


def diff(a, b, path="$"):
    """Where two shapes differ, as short lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        lines = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                lines.append(f"{path}.{k}: only on the real server")
            elif k not in b:
                lines.append(f"{path}.{k}: only on comfy-sim")
            else:
                lines.extend(diff(a[k], b[k], f"{path}.{k}"))
        return lines
    # An empty list tells nothing of its elements: it matches any list.
    if isinstance(a, list) and isinstance(b, list) and (a == ["list"] or b == ["list"]):
        return []
    if a != b:
        return [f"{path}: comfy-sim {json.dumps(a)[:120]} vs real {json.dumps(b)[:120]}"]
    return []


def wait_done(base, prompt_id):
    wait_until(lambda: call(base, "GET", f"/history/{prompt_id}")[2], f"{prompt_id} to finish on {base}", limit=30)


def exchanges(base, color):
    """The requests, in order (some depend on a job run just before).
    `color` makes the job new to the server (nothing of it cached)."""
    out = {}

    def ex(name, method, path, body=None):
        out[name] = call(base, method, path, body)
        return out[name]

    for name, path in [
        ("system_stats", "/system_stats"),
        ("features", "/features"),
        ("queue", "/queue"),
        ("prompt_status", "/prompt"),
        ("object_info_one", "/object_info/EmptyImage"),
        ("object_info_fixture", "/object_info/FixtureProgress"),
        ("models", "/models"),
        ("models_checkpoints", "/models/checkpoints"),
        ("embeddings", "/embeddings"),
        ("extensions", "/extensions"),
        ("global_subgraph_unknown", "/global_subgraphs/no-such-blueprint"),
        ("history_unknown", f"/history/{UNKNOWN}"),
        ("api_job_unknown", f"/api/jobs/{UNKNOWN}"),
        ("view_metadata_header_only", "/view_metadata/loras?filename=header_only.safetensors"),
        ("view_metadata_empty_file", "/view_metadata/checkpoints?filename=v1-5-pruned-emaonly.safetensors"),
        ("model_preview", "/experiment/models/preview/loras/0/header_only.safetensors"),
        ("settings", "/settings"),
    ]:
        ex(name, "GET", path)

    image = {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}}
    ex("prompt_unknown_class", "POST", "/prompt", {
        "prompt": {"1": image, "2": {"class_type": "SaveImag", "inputs": {"images": ["1", 0], "filename_prefix": "d"}}}})
    ex("prompt_bad_input", "POST", "/prompt", {
        "prompt": {"1": dict(image, inputs=dict(image["inputs"], width=100000)),
                   "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "d"}}}})
    ex("prompt_id_not_uuid", "POST", "/prompt", {
        "prompt": {"1": image, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}},
        "prompt_id": "not-a-uuid"})
    status, _, sub = ex("prompt_ok", "POST", "/prompt", {
        "prompt": {"1": image, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "diff"}},
                   "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}})
    assert status == 200, (base, sub)
    pid = sub["prompt_id"]
    wait_done(base, pid)
    _, _, hist = ex("history_one", "GET", f"/history/{pid}")
    ex("api_job_one", "GET", f"/api/jobs/{pid}")
    ex("api_jobs_sorted", "GET", "/api/jobs?sort_by=created_at&sort_order=desc&limit=1")
    ex("history_newest", "GET", "/history?max_items=1")
    files = [i for o in hist[pid]["outputs"].values() for i in o.get("images", [])]
    for kind in ("output", "temp"):
        found = [f for f in files if f.get("type") == kind]
        if found:
            ex(f"view_{kind}", "GET", f"/view?filename={found[0]['filename']}&type={kind}")
        else:
            out[f"view_{kind}"] = (0, f"no {kind} image in the history entry", None)
    ex("api_job_cancel_unknown", "POST", f"/api/jobs/{UNKNOWN}/cancel")
    ex("api_jobs_cancel_unknown", "POST", "/api/jobs/cancel", {"job_ids": [UNKNOWN]})
    ex("api_job_cancel_finished", "POST", f"/api/jobs/{pid}/cancel")
    ex("api_jobs_cancel_not_list", "POST", "/api/jobs/cancel", {"job_ids": pid})
    ex("api_jobs_cancel_invalid_ids", "POST", "/api/jobs/cancel", {"job_ids": [pid, "not-a-uuid", 5, None]})
    ex("interrupt_not_running", "POST", "/interrupt", {"prompt_id": UNKNOWN})
    return out


# Loaders given the real server's empty placeholder model files (the
# simulator serves the same folder with --models-dir).
PLACEHOLDER_FLOWS = {
    "checkpoint": {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 2]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    },
    "vae": {
        "1": {"class_type": "VAELoader", "inputs": {"vae_name": "vae-ft-mse-840000-ema-pruned.safetensors"}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 0]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    },
    "upscale": {
        "1": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "RealESRGAN_x4plus.pth"}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 3}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["1", 0], "image": ["2", 0]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    },
}


def loader_failures(base):
    """Each placeholder flow's run-time failure: the failing node, its class,
    the exception's type and message, and the inputs ComfyUI reports."""
    out = {}
    for kind, flow in PLACEHOLDER_FLOWS.items():
        status, _, sub = call(base, "POST", "/prompt", {"prompt": flow})
        assert status == 200, (base, kind, sub)
        pid = sub["prompt_id"]
        wait_done(base, pid)
        _, _, hist = call(base, "GET", f"/history/{pid}")
        entry = hist[pid]
        errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
        out[kind] = {
            "status_str": entry["status"]["status_str"],
            "errors": [
                {k: e.get(k) for k in ("node_id", "node_type", "exception_type", "exception_message", "current_inputs")}
                for e in errors
            ],
        }
    return out


def documented(version):
    """Exchange names docs/compatibility.md lists as deliberate differences
    for `version`."""
    text = DOC.read_text()
    section = text.split("## comfy-sim and real ComfyUI", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            versions = {v.strip() for v in cells[1].split(",")}
            if version in versions or "all" in versions:
                names.add(cells[0].strip("`"))
    return names


@contextmanager
def twin_sim(comfyui, tmp_path):
    """A comfy-sim as the real server's version, serving its model folder."""
    assert IS_REAL and comfyui.data, "COMFY_MCP_TEST_COMFYUI_DATA names the real server's base directory"
    version = REAL_VERSION or "0.33.0"
    proc, sim = start_sim(tmp_path, "--models-dir", str(comfyui.data / "models"), "--comfyui-version", version)
    try:
        yield sim
    finally:
        stop(proc)


@real_only("compares comfy-sim with a real server")
def test_the_simulator_answers_as_the_real_server_does(comfyui, tmp_path):
    version = REAL_VERSION or "0.33.0"
    with twin_sim(comfyui, tmp_path) as sim:
        color = int(time.time() * 1000) % 0xFFFFFF
        theirs = exchanges(comfyui.url, color)
        ours = exchanges(sim, color)
    differing = {}
    for name in theirs:
        (s1, c1, b1), (s2, c2, b2) = ours[name], theirs[name]
        lines = []
        if s1 != s2:
            lines.append(f"status: comfy-sim {s1} vs real {s2}")
        if c1 != c2:
            lines.append(f"content type: comfy-sim {c1!r} vs real {c2!r}")
        if s1 == s2 and c1 == c2:
            lines.extend(diff(shape(b1), shape(b2)))
        if lines:
            differing[name] = lines
    print(f"\ncomfy-sim --comfyui-version {version} against real ComfyUI {version}: "
          f"{len(theirs)} exchanges, {len(differing)} differ")
    for name, lines in differing.items():
        print(f"  {name}:")
        for line in lines[:12]:
            print(f"    {line}")
    allowed = documented(version)
    undocumented = sorted(set(differing) - allowed)
    stale = sorted(allowed - set(differing))
    assert not undocumented, f"differences not in docs/compatibility.md: {undocumented}"
    assert not stale, f"docs/compatibility.md lists differences that are gone: {stale}"


@real_only("compares comfy-sim with a real server")
def test_loaders_fail_on_placeholder_models_as_the_real_server_does(comfyui, tmp_path):
    with twin_sim(comfyui, tmp_path) as sim:
        theirs = loader_failures(comfyui.url)
        ours = loader_failures(sim)
    for kind in PLACEHOLDER_FLOWS:
        assert theirs[kind]["status_str"] == "error" and len(theirs[kind]["errors"]) == 1, theirs[kind]
        assert ours[kind] == theirs[kind], f"{kind}: comfy-sim {ours[kind]} vs real {theirs[kind]}"

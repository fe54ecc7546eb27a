"""Video, animation and audio outputs an assistant can see: a workflow of
core nodes makes six red then six blue 64x48 frames into an H.264 MP4
(CreateVideo + SaveVideo), a VP9 WebM, an animated WebP and PNG, and 1.5 s
of silence into FLAC, MP3 and Opus; run results and comfyui_list_outputs
mark them, and comfyui_get_image describes each (facts, a contact sheet or
the sound, a link). Against comfy-sim (whose save nodes write files the
real ComfyUI made) and against the real ComfyUI on the CPU."""

import base64
import json

import anyio

from conftest import IS_REAL, REAL_VERSION, session, structured, text

RED, BLUE = 0xFF0000, 0x0000FF

WORKFLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 6, "color": RED}},
    "2": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 6, "color": BLUE}},
    "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
    "4": {"class_type": "CreateVideo", "inputs": {"images": ["3", 0], "fps": 8.0}},
    "5": {
        "class_type": "SaveVideo",
        "inputs": {"video": ["4", 0], "filename_prefix": "video/media", "format": "auto", "codec": "auto"},
    },
    "6": {
        "class_type": "SaveWEBM",
        "inputs": {"images": ["3", 0], "filename_prefix": "media", "codec": "vp9", "fps": 8.0, "crf": 32.0},
    },
    "7": {
        "class_type": "SaveAnimatedWEBP",
        "inputs": {
            "images": ["3", 0],
            "filename_prefix": "media",
            "fps": 8.0,
            "lossless": True,
            "quality": 80,
            "method": "default",
        },
    },
    "8": {
        "class_type": "SaveAnimatedPNG",
        "inputs": {"images": ["3", 0], "filename_prefix": "media", "fps": 8.0, "compress_level": 4},
    },
    "9": {"class_type": "EmptyAudio", "inputs": {"duration": 1.5, "sample_rate": 22050, "channels": 1}},
    "10": {"class_type": "SaveAudio", "inputs": {"audio": ["9", 0], "filename_prefix": "audio/media"}},
    "11": {"class_type": "SaveAudioMP3", "inputs": {"audio": ["9", 0], "filename_prefix": "audio/media", "quality": "V0"}},
    "12": {
        "class_type": "SaveAudioOpus",
        "inputs": {"audio": ["9", 0], "filename_prefix": "audio/media", "quality": "128k"},
    },
}


def _by_node(outputs):
    return {o["node_id"]: o for o in outputs}


async def _run(s):
    r = structured(await s.call_tool("comfyui_run_workflow", {"workflow": json.dumps(WORKFLOW), "wait": True}))
    assert r["status"] == "completed", r
    return r


def _get(o):
    return {"filename": o["filename"], "subfolder": o["subfolder"], "type": o.get("type", "output")}


def test_video_and_audio_outputs_are_marked_and_described(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            r = await _run(s)
            outs = _by_node(r["outputs"])
            # ComfyUI's own names: `_00001_.mp4`, and for audio `_00001.flac`
            # on 0.33.0 (the simulator's default), `_00001_.flac` on 0.8.0.
            assert outs["5"]["subfolder"] == "video" and outs["5"]["filename"].endswith("_.mp4"), outs["5"]
            assert outs["10"]["subfolder"] == "audio" and outs["10"]["filename"].endswith(".flac"), outs["10"]
            old_names = IS_REAL and REAL_VERSION.startswith("0.8")
            assert outs["10"]["filename"].endswith("_.flac") == old_names, outs["10"]
            for node in ("5", "6", "7", "8"):
                assert outs[node]["media"] == "video", outs[node]
            for node in ("10", "11", "12"):
                assert outs[node]["media"] == "audio", outs[node]

            # The H.264 MP4: facts, a contact sheet of evenly spaced frames, a link.
            mp4 = await s.call_tool("comfyui_get_image", _get(outs["5"]))
            v = structured(mp4)
            m = v["media"]
            assert (m["kind"], m["container"], m["codec"]) == ("video", "mp4", "h264"), m
            assert (m["width"], m["height"], m["frames"]) == (64, 48, 12), m
            assert m["fps"] == 8 and m["duration_seconds"] == 1.5, m
            assert v["contact_sheet"]["frames"] == [0, 1, 2, 4, 5, 6, 8, 9, 11], v
            assert v["result"] == v["url"] and "/view?" in v["url"]
            kinds = [c.type for c in mp4.content]
            assert kinds == ["text", "image", "resource_link"], kinds
            sheet = next(c for c in mp4.content if c.type == "image")
            assert sheet.mime_type == "image/jpeg"
            assert base64.b64decode(sheet.data)[:2] == b"\xff\xd8"
            assert "12 frames at 8 fps" in text(mp4), text(mp4)

            # VP9 is not decoded here: the facts and the link, no error.
            webm = await s.call_tool("comfyui_get_image", _get(outs["6"]))
            w = structured(webm)
            assert (w["media"]["codec"], w["media"]["frames"]) == ("vp9", 12), w
            assert "contact_sheet" not in w and any("no contact sheet" in n for n in w["notes"]), w
            assert [c.type for c in webm.content] == ["text", "resource_link"]

            # Animated WebP and PNG: the file inline as before (the data
            # URI), plus the facts and a sheet of the two frames Pillow keeps.
            for node, mime in (("7", "image/webp"), ("8", "image/png")):
                a = await s.call_tool("comfyui_get_image", _get(outs[node]))
                av = structured(a)
                assert av["result"].startswith(f"data:{mime};base64,"), av["result"][:40]
                assert a.content[0].text == av["result"]
                assert av["media"]["frames"] == 2 and av["media"]["duration_seconds"] == 1.5, av
                assert av["contact_sheet"]["frames"] == [0, 1], av
                assert [c.type for c in a.content] == ["text", "image", "text", "image", "resource_link"]

            # Audio within the budget: the sound itself, with its facts.
            for node, codec, rate in (("10", "flac", 22050), ("11", "mp3", 22050), ("12", "opus", 24000)):
                a = await s.call_tool("comfyui_get_image", _get(outs[node]))
                av = structured(a)
                assert (av["media"]["kind"], av["media"]["codec"]) == ("audio", codec), av
                assert av["media"]["sample_rate"] == rate, av
                assert 1.49 <= av["media"]["duration_seconds"] <= 1.6, av
                sound = next(c for c in a.content if c.type == "audio")
                assert sound.mime_type.startswith("audio/"), sound.mime_type
                assert len(base64.b64decode(sound.data)) == av["size_bytes"]

            # comfyui_list_outputs: the peer's items, `media` on these files.
            listed = structured(await s.call_tool("comfyui_list_outputs", {"limit": 100}))
            marks = {(i["subfolder"], i["filename"]): i.get("media") for i in listed["items"]}
            for node in ("5", "6", "7", "8", "10", "11", "12"):
                key = (outs[node]["subfolder"], outs[node]["filename"])
                assert marks.get(key) == outs[node]["media"], (key, marks)

            # The output resource gives the whole file with its type.
            res = await s.read_resource(outs["5"]["uri"])
            blob = res.contents[0]
            assert blob.mime_type == "video/mp4", blob.mime_type
            assert base64.b64decode(blob.blob)[4:8] == b"ftyp"
            # Its first chunk also carries the facts.
            assert blob.meta["media"] == m, blob.meta
            audio = (await s.read_resource(outs["10"]["uri"])).contents[0]
            assert audio.meta["media"]["codec"] == "flac", audio.meta

    anyio.run(main)


def test_a_small_inline_budget_gives_links_and_a_smaller_sheet(home, comfyui_url):
    async def main():
        config = "server:\n  max_inline_bytes: 8000\n"
        async with session(home, comfyui_url, config=config) as s:
            outs = _by_node((await _run(s))["outputs"])
            mp4 = structured(await s.call_tool("comfyui_get_image", _get(outs["5"])))
            assert mp4["contact_sheet"]["width"] < 1024, mp4
            flac = await s.call_tool("comfyui_get_image", _get(outs["10"]))
            fv = structured(flac)
            if fv["size_bytes"] * 4 / 3 > 8000:
                assert all(c.type != "audio" for c in flac.content)
                assert any("inline budget" in n for n in fv["notes"]), fv
            assert flac.content[-1].type == "resource_link"

    anyio.run(main)

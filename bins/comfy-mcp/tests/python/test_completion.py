"""Completions (`completion/complete`) through the official MCP Python SDK,
over stdio and Streamable HTTP: weight folders, the files of a model
folder, workflow template names, a finished job's prompt id and output
indexes, a prefix that matches nothing, and a path in a context argument,
which is refused before anything reaches ComfyUI."""

import json

import anyio
import pytest
from mcp import types

from conftest import TRANSPORT, session, structured


@pytest.fixture(params=["stdio", "http"], autouse=True)
def transport(request):
    TRANSPORT["name"] = request.param
    yield request.param
    TRANSPORT["name"] = "stdio"


MODELS = types.ResourceTemplateReference(uri="comfyui://models/{folder}")
OUTPUT = types.ResourceTemplateReference(uri="comfyui://output/{prompt_id}/{index}")


WEIGHTLESS = (
    '{"1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 3}},'
    ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "complete"}}}'
)


def prompt(name):
    return types.PromptReference(name=name)


async def complete(s, ref, name, value, context=None):
    result = await s.complete(ref, {"name": name, "value": value}, context)
    return result.completion


def test_folders_models_and_workflow_names(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            folders = await complete(s, MODELS, "folder", "")
            assert "checkpoints" in folders.values
            assert "custom_nodes" not in folders.values and "configs" not in folders.values
            assert folders.total == len(folders.values) and folders.has_more is False

            check = await complete(s, prompt("models"), "folder", "CHECK")
            assert check.values == ["checkpoints"] and check.total == 1

            # The gen prompt's model: the files the models resource lists.
            read = await s.read_resource("comfyui://models/checkpoints")
            listed = json.loads(read.contents[0].text)["models"]
            models = await complete(s, prompt("gen"), "model", "")
            assert sorted(models.values) == sorted(listed[:100])
            assert models.total == len(listed)
            if listed:
                first = listed[0]
                narrowed = await complete(s, prompt("gen"), "model", first[:3].upper())
                assert first in narrowed.values
                assert all(v.lower().startswith(first[:3].lower()) for v in narrowed.values)

            names = await complete(s, prompt("workflow"), "template", "img")
            assert names.values == ["img2img"], names

            nothing = await complete(s, MODELS, "folder", "no-such-folder-prefix")
            assert nothing.values == [] and nothing.total == 0 and nothing.has_more is False

    anyio.run(main)


def test_job_ids_output_indexes_and_a_hostile_context(home, comfyui_url):
    async def main():
        async with session(home, comfyui_url) as s:
            # A workflow that needs no weights, so a real ComfyUI finishes it too.
            done = structured(await s.call_tool("comfyui_run_workflow", {"workflow": WEIGHTLESS, "wait": True}))
            assert done["status"] == "completed", done
            prompt_id = done["prompt_id"]

            ids = await complete(s, OUTPUT, "prompt_id", prompt_id[:8])
            assert prompt_id in ids.values
            ids = await complete(s, prompt("progress"), "prompt_id", prompt_id[:8])
            assert prompt_id in ids.values

            indexes = await complete(s, OUTPUT, "index", "", {"prompt_id": prompt_id})
            assert indexes.values and indexes.values[0] == "0", indexes
            assert indexes.total >= 1 and indexes.has_more is False

            for hostile in ("../../../etc/passwd", f"{prompt_id}/../../x", "..\\..\\boot.ini"):
                with pytest.raises(Exception) as refused:
                    await complete(s, OUTPUT, "index", "", {"prompt_id": hostile})
                assert "prompt id" in str(refused.value), refused.value

            with pytest.raises(Exception) as unknown:
                await complete(s, prompt("no_such_prompt"), "x", "")
            assert "Unknown prompt" in str(unknown.value)

    anyio.run(main)

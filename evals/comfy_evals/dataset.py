"""The suites' datasets: JSONL files in evals/datasets/, one question a line.

A line has an `id`, the `input` (the user's request), `tags` (to slice
results by), `checks` (see checks.py), and the two scripts the mock
assistants follow in CI: `script` (the right tool calls and a correct
answer) and `wrong_script` (wrong calls or an invented answer). Lines are
checked when loaded, so a typo in a check fails at once rather than
scoring every run as a failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample

from .checks import KINDS

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
SUITES = ("static", "live", "security")


def read_lines(suite: str) -> list[dict[str, Any]]:
    """The suite's lines, each validated."""
    path = DATASETS / f"{suite}.jsonl"
    lines = [json.loads(text) for text in path.read_text().splitlines() if text.strip()]
    for line in lines:
        _validate(line, path)
    return lines


def load_suite(suite: str) -> MemoryDataset:
    """The suite as an Inspect dataset; everything but `input` and `id`
    goes into the sample's metadata."""
    samples = [
        Sample(id=line["id"], input=line["input"], metadata={k: v for k, v in line.items() if k not in ("id", "input")})
        for line in read_lines(suite)
    ]
    return MemoryDataset(samples, name=suite)


def _validate(line: dict[str, Any], path: Path) -> None:
    where = f"{path.name}: {line.get('id', '(no id)')}"
    for key in ("id", "input", "tags", "checks", "script", "wrong_script"):
        if not line.get(key):
            raise ValueError(f"{where}: `{key}` is missing or empty")
    for check in line["checks"]:
        if next(iter(check), None) not in KINDS:
            raise ValueError(f"{where}: unknown check {check}")
    for name in ("script", "wrong_script"):
        steps = line[name]
        if "answer" not in steps[-1] or any("call" not in step for step in steps[:-1]):
            raise ValueError(f"{where}: `{name}` must be calls followed by one answer")

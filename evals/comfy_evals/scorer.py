"""The scorer: a sample passes when every one of its checks (and the
suite's) holds on the transcript; no model grades anything.

Each score keeps every check's verdict in its metadata and the failed
ones in its explanation, and the `tag_accuracy` metric reports the pass
rate per dataset tag next to the overall accuracy."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from statistics import mean
from typing import Any

from inspect_ai.scorer import (
    CORRECT,
    INCORRECT,
    Metric,
    SampleScore,
    Score,
    Scorer,
    Target,
    accuracy,
    metric,
    scorer,
    stderr,
)
from inspect_ai.solver import TaskState

from .checks import run_checks
from .transcript import Transcript


@metric
def tag_accuracy() -> Metric:
    """The share of passed samples among those with each tag."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        by_tag: dict[str, list[float]] = defaultdict(list)
        for s in scores:
            for tag in (s.sample_metadata or {}).get("tags", []):
                by_tag[tag].append(s.score.as_float())
        return {tag: mean(values) for tag, values in sorted(by_tag.items())}

    return compute


@scorer(metrics=[accuracy(), stderr(), tag_accuracy()])
def tool_checks(suite_checks: list[dict[str, Any]] | None = None) -> Scorer:
    """Runs `suite_checks` and the sample's own `checks` (metadata) on the
    conversation and its final answer."""

    async def score(state: TaskState, target: Target) -> Score:
        transcript = Transcript.from_messages(state.messages, state.output.completion)
        outcomes = run_checks(list(suite_checks or []) + state.metadata["checks"], transcript)
        failed = [o for o in outcomes if not o.passed]
        return Score(
            value=INCORRECT if failed else CORRECT,
            answer=transcript.answer,
            explanation="\n".join(f"FAILED {o.check}: {o.detail}" for o in failed) or "all checks passed",
            metadata={"checks": [asdict(o) for o in outcomes]},
        )

    return score

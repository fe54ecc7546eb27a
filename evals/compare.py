"""Compares two Inspect eval logs of the same suite, e.g. two models or two
versions of the server:

    python evals/compare.py LOG_A LOG_B

prints each sample whose result changed (PASS, FAIL, or ERROR when the
sample did not finish), the samples found in only one log, and for every
dataset tag how many samples passed in each log."""

from __future__ import annotations

import argparse
from collections import defaultdict

from inspect_ai.log import EvalLog, EvalSample, read_eval_log
from inspect_ai.scorer import CORRECT

ALL = "(all)"


def outcome(sample: EvalSample) -> str:
    """PASS or FAIL from the sample's first score; ERROR without one."""
    if not sample.scores:
        return "ERROR"
    score = next(iter(sample.scores.values()))
    return "PASS" if score.value == CORRECT else "FAIL"


def results(log: EvalLog) -> dict[str, tuple[str, list[str]]]:
    """Each sample's outcome and tags, keyed by id (and epoch when the log
    has several)."""
    several = (log.eval.config.epochs or 1) > 1
    return {
        f"{s.id}#{s.epoch}" if several else str(s.id): (outcome(s), list((s.metadata or {}).get("tags", [])))
        for s in log.samples or []
    }


def report(a: EvalLog, b: EvalLog, a_name: str, b_name: str) -> str:
    """The comparison as text."""
    ra, rb = results(a), results(b)
    lines = [
        f"A: {a_name} ({a.eval.task}, {a.eval.model})",
        f"B: {b_name} ({b.eval.task}, {b.eval.model})",
    ]
    if a.eval.task != b.eval.task:
        lines.append(f"warning: the logs are of different tasks ({a.eval.task}, {b.eval.task})")

    changed = [(sid, ra[sid][0], rb[sid][0]) for sid in sorted(ra.keys() & rb.keys()) if ra[sid][0] != rb[sid][0]]
    lines += ["", f"Changed samples: {len(changed)} of {len(ra.keys() & rb.keys())}"]
    width = max((len(sid) for sid, _, _ in changed), default=0)
    lines += [f"  {sid:<{width}}  {was} -> {now}" for sid, was, now in changed]
    for sid in sorted(ra.keys() - rb.keys()):
        lines.append(f"  {sid}  only in A ({ra[sid][0]})")
    for sid in sorted(rb.keys() - ra.keys()):
        lines.append(f"  {sid}  only in B ({rb[sid][0]})")

    counts = _per_tag(ra, rb)
    total = counts.pop(ALL)
    lines += ["", "Per tag (passed/total):", f"  {'tag':<20} {'A':>7} {'B':>7}"]
    for tag, (pa, na, pb, nb) in [*sorted(counts.items()), (ALL, total)]:
        lines.append(f"  {tag:<20} {f'{pa}/{na}':>7} {f'{pb}/{nb}':>7}")
    return "\n".join(lines)


def _per_tag(ra: dict[str, tuple[str, list[str]]], rb: dict[str, tuple[str, list[str]]]) -> dict[str, list[int]]:
    """{tag: [passed in A, total in A, passed in B, total in B]}, with every
    sample also counted under ALL."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for offset, results_ in ((0, ra), (2, rb)):
        for result, tags in results_.values():
            for tag in [*tags, ALL]:
                counts[tag][offset] += result == "PASS"
                counts[tag][offset + 1] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log_a", help="the first eval log (.eval or .json)")
    parser.add_argument("log_b", help="the second eval log")
    args = parser.parse_args()
    print(report(read_eval_log(args.log_a), read_eval_log(args.log_b), args.log_a, args.log_b))


if __name__ == "__main__":
    main()

"""Paired timing: calls timed in turn, round after round, and the ratio of their times.

On this shared machine the speed of a core drifts by 20-30% over tens of seconds (another
process, the host), so two benchmarks timed one after the other run on two different
machines: the ratio of their minimum times moved by up to 86% over three runs (by over
10% for most ratios) in one measurement, by up to 32% in a quieter one. Timed in
alternation, each round sees every call under the same conditions, and the median over
the rounds of the ratio within a round repeats within a few per cent for most ratios
(benchmarks/README.md lists the spreads). The ratio summary is taken this
way, right after pytest-benchmark has timed each benchmark."""

import math
import statistics
import time
from collections.abc import Callable


def rounds(calls: dict[str, Callable[[], object]], clock: Callable[[], float] = time.perf_counter,
           min_rounds: int = 9, min_time: float = 1.0,
           per_timing: float = 0.0) -> dict[str, list[float]]:
    """``{name: [seconds per call, one entry a round]}``.

    A round calls each of ``calls`` in turn, once, between two readings of ``clock``; with
    ``per_timing`` > 0, as many times as fill that many seconds instead, so that a clock
    which synchronises a GPU is read once per timing, not once per tiny kernel. On a CPU
    one call a timing is what repeats: a few dozen calls of a 40 us function back to back
    warm the caches for it alone, and the ratio of two such loops moved by 20% from one
    second to the next here, against 2% for strict alternation. Rounds go on until there
    are ``min_rounds`` of them and ``min_time`` seconds have passed.
    """
    loops = dict.fromkeys(calls, 1)
    for name, call in calls.items():
        call()  # once untimed, then once to learn how many calls fill a timing
        start = clock()
        call()
        if per_timing > 0:
            loops[name] = max(1, math.ceil(per_timing / max(clock() - start, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    began, done = clock(), 0
    while done < min_rounds or clock() - began < min_time:
        for name, call in calls.items():
            start = clock()
            for _ in range(loops[name]):
                call()
            times[name].append((clock() - start) / loops[name])
        done += 1
    return times


def ratio(times: dict[str, list[float]], top: str, bottom: str) -> float | None:
    """The median over the rounds of ``top``'s time over ``bottom``'s in the same round;
    1 for a call over itself, ``None`` where one of the two was not timed."""
    if top == bottom:
        return 1.0
    if top not in times or bottom not in times:
        return None
    return statistics.median(t / b for t, b in zip(times[top], times[bottom], strict=True))

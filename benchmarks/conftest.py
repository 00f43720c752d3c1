"""Benchmark settings: one torch thread, a warm-up, a synchronising clock on CUDA, ratios.

Every benchmark times through the ``bench`` fixture, which files its result under a group
and a variant, then times it in turn with the group's autograd, compiled autograd and floor
(``paired``); after the run ``summary`` prints, per group, eager and compiled autograd's
time over each variant's and each variant's over the GEMM floor, and writes them to
``--ratios-json``.
"""

import time
from pathlib import Path

import pytest
import torch

from benchmarks import compiled, paired, summary, sweep

WARMUP_ITERATIONS = 10  # calls before the timed rounds: allocator, thread pool, GEMM set-up
RESULTS = pytest.StashKey[list]()


def pytest_addoption(parser):
    parser.addoption("--threads", type=int, default=1,
                     help="torch CPU threads (default 1: more compete with whatever else "
                          "runs on a shared machine)")
    parser.addoption("--compile-backend", choices=("inductor", "aot_eager"),
                     help="torch.compile's backend for the compiled baseline (default: "
                          "inductor, or aot_eager under --benchmark-disable)")
    parser.addoption("--ratios-json", type=Path, default=Path(".benchmarks/ratios.json"),
                     help="where the ratio summary is written, relative to the rootdir")


def pytest_xdist_auto_num_workers(config):
    """No workers for the project's ``-n auto``: timings are taken in one process, each with
    the machine to itself (pytest-benchmark turns itself off under xdist)."""
    return 0


def pytest_configure(config):
    torch.set_num_threads(config.getoption("threads"))
    if config.getoption("benchmark_disable", False):  # once each, as a test: see compiled
        compiled.BACKEND = "aot_eager"
        sweep.TIMED = False
    compiled.BACKEND = config.getoption("compile_backend") or compiled.BACKEND
    config.stash[RESULTS] = []


def cuda_clock() -> float:
    """``perf_counter`` once the GPU has run what was queued: read at each round's start and
    end, so a round times its kernels, not their launch, with no sync inside the calls."""
    torch.cuda.synchronize()
    return time.perf_counter()


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle, which would split groups
def pytest_collection_modifyitems(items):
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            on_cuda = _params(item).get("device") == "cuda"
            item.add_marker(pytest.mark.benchmark(
                warmup=True, warmup_iterations=WARMUP_ITERATIONS,
                **({"timer": cuda_clock} if on_cuda else {})))
    # Run the benchmarks of one group back to back (test_cases.py would run every case's
    # autograd first, then every manual): this machine's speed drifts over seconds, and a
    # ratio is only as good as the two timings it divides were taken alike.
    first: dict[tuple, int] = {}
    for i, item in enumerate(items):
        first.setdefault(_group(item), i)
    items.sort(key=lambda item: first[_group(item)])


def _params(item) -> dict:
    return item.callspec.params if hasattr(item, "callspec") else {}


def _group(item) -> tuple:
    params = _params(item)
    if "benchmark" not in getattr(item, "fixturenames", ()):
        return (item.nodeid,)
    return (item.path, getattr(params.get("case"), "name", None), params.get("n"),
            params.get("device"))


@pytest.fixture(scope="module", autouse=True)
def _free_sweep_tensors():
    """A sweep keeps one size's tensors between its tests; let them go after the module."""
    yield
    sweep.clear()


@pytest.fixture
def bench(benchmark, request):
    """``bench(group, variant, call, baselines)``: time ``call`` as ``variant`` of ``group``
    and return what it returned, for the test to check. ``baselines()`` gives the group's
    ``autograd``, ``compiled`` and ``floor`` calls (those it has); each is timed in turn
    with ``call`` for the ratios."""
    on_cuda = _params(request.node).get("device") == "cuda"

    def run(group, variant, call, baselines=dict):
        benchmark.group = group
        benchmark.extra_info["variant"] = variant
        result = benchmark(call)
        if benchmark.stats:  # None under --benchmark-disable: one call, nothing timed
            others = {k: c for k, c in baselines().items() if k != variant}
            times = paired.rounds({variant: call, **others}, **(
                {"clock": cuda_clock, "per_timing": 1e-3} if on_cuda else {}))
            stats = benchmark.stats.stats
            request.config.stash[RESULTS].append(summary.Row(
                group, variant, stats.min, stats.median,
                autograd_over=paired.ratio(times, "autograd", variant),
                over_floor=paired.ratio(times, variant, "floor"), rounds=len(times[variant]),
                compiled_over=paired.ratio(times, "compiled", variant)))
        return result
    return run


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter, config):
    results = config.stash.get(RESULTS, [])
    if results:
        path = config.rootpath / config.getoption("ratios_json")
        summary.report(results, config, terminalreporter, path)

"""Ratios, which pytest-benchmark does not print: after a run, and across several runs.

After ``pytest benchmarks`` (conftest calls ``report``), per group: autograd's time over
each variant's (above 1: faster than autograd) and each variant's time over the GEMM floor
(1: nothing but the six matmuls), printed and written as JSON. Each time is the minimum
over the benchmark's rounds: on a shared machine noise only ever adds time (another
process, a cache flushed), so the fastest round is the closest to the code's own cost and
the figure that repeats best from run to run. The medians are in the JSON too.

Across runs, the README's table: ``python -m benchmarks.summary RUN.json [RUN.json ...]``
prints each ratio as the median over the runs, with its spread, ``(max - min) / median``.
"""

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import torch

STATISTIC = "min"
ORDER = ("autograd", "manual", "buffered", "broadcast", "floor")  # the rest follow, by name


def ratios(results) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{group: {variant: times and ratios}}`` from ``(group, variant, min, median)`` rows."""
    groups: dict[str, dict[str, dict[str, float | None]]] = {}
    for group, variant, low, median in results:
        groups.setdefault(group, {})[variant] = {"min_s": low, "median_s": median}
    for group, variants in groups.items():
        base = variants.get("autograd", {}).get("min_s")
        floor = variants.get("floor", {}).get("min_s")
        for v in variants.values():
            v["autograd_over"] = base / v["min_s"] if base else None
            v["over_floor"] = v["min_s"] / floor if floor else None
        groups[group] = dict(sorted(variants.items(), key=lambda kv: _rank(kv[0])))
    return dict(sorted(groups.items()))


def _rank(variant: str) -> tuple[int, str]:
    return (ORDER.index(variant) if variant in ORDER else len(ORDER), variant)


def machine(threads: int) -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in
              (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
              if line.startswith("model name")]
    return {"cpu": models[0] if models else platform.processor(),
            "cores": os.cpu_count(),
            "cores_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else None,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "torch_threads": threads,
            "python": platform.python_version(), "platform": platform.platform()}


def _ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}"


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def table(groups) -> list[str]:
    lines = [f"{'group':26} {'variant':10} {STATISTIC:>9} {'autograd/variant':>17}"
             f" {'variant/floor':>14}"]
    for group, variants in groups.items():
        for i, (name, v) in enumerate(variants.items()):
            lines.append(f"{group if i == 0 else '':26} {name:10} {_time(v['min_s']):>9}"
                         f" {_ratio(v['autograd_over']):>17} {_ratio(v['over_floor']):>14}")
    return lines


def report(results, config, terminal, path: Path) -> None:
    """Print the ratios of this run and write them, with the machine and command, to path."""
    groups = ratios(results)
    terminal.write_sep("-", f"ratios ({STATISTIC} of each benchmark's rounds)")
    for line in table(groups):
        terminal.write_line(line)
    doc = {"statistic": STATISTIC,
           "command": " ".join(["pytest", *config.invocation_params.args]),
           "machine": machine(torch.get_num_threads()), "groups": groups}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    terminal.write_line(f"ratios written to {path}")


def _median_and_spread(values: list[float]) -> str:
    mid = statistics.median(values)
    return f"{mid:.2f} | {(max(values) - min(values)) / mid:.1%}"


def across_runs(runs: list[dict]) -> list[str]:
    """The README's markdown table: each ratio's median over the runs and its spread; and
    for CUDA groups only, the median time (a CPU's absolute times are not worth quoting)."""
    m = runs[0]["machine"]
    gpu = any("-cuda" in group for group in runs[0]["groups"])
    lines = [f"{len(runs)} runs of `{runs[0]['command']}`; {m['cpu']}, {m['cores']} cores"
             f" ({m['cores_allowed']} allowed), torch {m['torch']}, {m['torch_threads']}"
             f" thread(s)" + (f", GPU: {m['gpu']}" if gpu else "") + ". Each ratio is the"
             f" median over the runs of the ratio of {STATISTIC} times; spread ="
             " (max - min) / median.", "",
             "| group | variant | autograd / variant | spread | variant / floor | spread |"
             + (" GPU time (us) |" if gpu else ""),
             "| --- | --- | ---: | ---: | ---: | ---: |" + (" ---: |" if gpu else "")]
    for group, variants in runs[0]["groups"].items():
        for variant in variants:
            found = [r["groups"][group][variant] for r in runs
                     if variant in r["groups"].get(group, {})]
            cells = ["- | -" if None in (vs := [f[key] for f in found]) else
                     _median_and_spread(vs) for key in ("autograd_over", "over_floor")]
            if gpu:
                on_gpu = "-cuda" in group
                cells.append(f"{statistics.median(f['min_s'] for f in found) * 1e6:.1f}"
                             if on_gpu else "-")
            lines.append(f"| `{group}` | {variant} | {' | '.join(cells)} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="ratio JSON files, one per run")
    args = parser.parse_args(argv)
    print("\n".join(across_runs([json.loads(p.read_text()) for p in args.runs])))


if __name__ == "__main__":
    main()

"""Ratios, which pytest-benchmark does not print: after a run, and across several runs.

After ``pytest benchmarks`` (conftest calls ``report``), per group: autograd's time over
each variant's (above 1: faster than autograd), compiled autograd's over each variant's
(``torch.compile``d: above 1, faster than that too) and each variant's time over the GEMM
floor (1: nothing but the six matmuls), printed and written as JSON. The ratios come from the
paired timing (``paired``: the median over rounds of the ratio within a round), not from
dividing two benchmarks timed seconds apart; pytest-benchmark's own minimum and median of
each benchmark are printed and kept beside them.

Across runs, the README's table: ``python -m benchmarks.summary RUN.json [RUN.json ...]``
prints each ratio as the median over the runs, with its spread, ``(max - min) / median``.
"""

import argparse
import json
import os
import platform
import statistics
from pathlib import Path
from typing import NamedTuple

import torch

ORDER = ("autograd", "compiled", "manual", "buffered", "broadcast", "floor")  # then by name


class Row(NamedTuple):
    """One benchmark: pytest-benchmark's times, and the paired ratios (``None``: no such
    call in the group)."""

    group: str
    variant: str
    min_s: float
    median_s: float
    autograd_over: float | None
    over_floor: float | None
    rounds: int  # of the paired timing
    compiled_over: float | None = None  # compiled autograd's time over the variant's


def ratios(rows: list[Row]) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{group: {variant: {"min_s": ..., "autograd_over": ..., ...}}}``, in a fixed order."""
    groups: dict[str, dict[str, dict[str, float | None]]] = {}
    for row in rows:
        groups.setdefault(row.group, {})[row.variant] = row._asdict()
    return {group: dict(sorted(variants.items(), key=lambda kv: _rank(kv[0])))
            for group, variants in sorted(groups.items())}


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
    lines = [f"{'group':32} {'variant':10} {'min':>9} {'autograd/variant':>17}"
             f" {'compiled/variant':>17} {'variant/floor':>14}"]
    for group, variants in groups.items():
        for i, (name, v) in enumerate(variants.items()):
            lines.append(f"{group if i == 0 else '':32} {name:10} {_time(v['min_s']):>9}"
                         f" {_ratio(v['autograd_over']):>17}"
                         f" {_ratio(v.get('compiled_over')):>17} {_ratio(v['over_floor']):>14}")
    return lines


def report(results, config, terminal, path: Path) -> None:
    """Print the ratios of this run and write them, with the machine and command, to path."""
    groups = ratios(results)
    terminal.write_sep("-", "ratios (paired timing; min: pytest-benchmark's)")
    for line in table(groups):
        terminal.write_line(line)
    doc = {"ratios": "median over rounds of paired timing", "times": "pytest-benchmark",
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
    lines = [f"{len(runs)} runs, the first `{runs[0]['command']}`; {m['cpu']}, {m['cores']} cores"
             f" ({m['cores_allowed']} allowed), torch {m['torch']}, {m['torch_threads']}"
             f" thread(s)" + (f", GPU: {m['gpu']}" if gpu else "") + ". Each ratio is the"
             " median over the runs of the run's paired ratio; spread = (max - min) / median.",
             "",
             "| group | variant | autograd / variant | spread | compiled / variant | spread"
             " | variant / floor | spread |" + (" GPU time (us) |" if gpu else ""),
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
             + (" ---: |" if gpu else "")]
    for group, variants in runs[0]["groups"].items():
        for variant in variants:
            found = [r["groups"][group][variant] for r in runs
                     if variant in r["groups"].get(group, {})]
            cells = ["- | -" if None in (vs := [f.get(key) for f in found]) else
                     _median_and_spread(vs)
                     for key in ("autograd_over", "compiled_over", "over_floor")]
            if gpu:
                on_gpu = "-cuda" in group
                cells.append(f"{statistics.median(f['min_s'] for f in found) * 1e6:.1f}"
                             if on_gpu else "-")
            lines.append(f"| `{group}` | {variant} | {' | '.join(cells)} |")
    return lines


def load_runs(parser: argparse.ArgumentParser, paths: list[Path]) -> list[dict]:
    """The ratio files, or a one-line usage error naming those that are missing."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such ratio file: {', '.join(missing)} (pytest benchmarks "
                     "--ratios-json PATH writes one)")
    return [json.loads(p.read_text()) for p in paths]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.summary",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("runs", nargs="+", type=Path, help="ratio JSON files, one per run")
    args = parser.parse_args(argv)
    print("\n".join(across_runs(load_runs(parser, args.runs))))


if __name__ == "__main__":
    main()

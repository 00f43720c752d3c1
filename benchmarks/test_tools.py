"""The tools around the benchmarks, on numbers known in advance: the paired timing, the
ratios and the plot (which ``--benchmark-disable`` never reaches), the memory probe, and
where the broadcast form runs."""

import json
import subprocess
import sys

import pytest

from benchmarks import memory, paired, summary
from benchmarks.mlp_forms import SIZES, too_big


def test_paired_ratio_holds_while_the_machine_drifts():
    now = 0.0

    def costing(seconds):  # a call that takes `seconds` on a machine 1x or 2x slow
        def call():
            nonlocal now
            now += seconds * (1 if int(now / 0.01) % 2 else 2)
        return call

    times = paired.rounds({"autograd": costing(3e-3), "manual": costing(1e-3)},
                          clock=lambda: now, min_time=0.2)
    assert len(times["manual"]) >= 5
    assert max(times["manual"]) == 2 * min(times["manual"])  # the drift is there
    assert paired.ratio(times, "autograd", "manual") == pytest.approx(3.0)
    assert paired.ratio(times, "manual", "manual") == 1.0
    assert paired.ratio(times, "manual", "floor") is None  # no floor timed


def row(group, variant, autograd_over, over_floor=None):
    return summary.Row(group, variant, 1e-3, 1e-3, autograd_over, over_floor, rounds=5)


ROWS = [row("g-cpu-N10", "floor", 3.0, 1.0), row("g-cpu-N10", "autograd", 1.0, 3.0),
        row("g-cpu-N10", "manual", 2.0, 1.5), row("h-cpu", "manual", 4.0),
        row("h-cpu", "autograd", 1.0)]


def run_json(scale: float) -> dict:
    rows = [r._replace(autograd_over=r.autograd_over / scale,
                       over_floor=r.over_floor and r.over_floor * scale)
            if r.variant == "manual" else r for r in ROWS]
    return {"command": "pytest benchmarks", "groups": summary.ratios(rows),
            "machine": summary.machine(threads=1)}


def test_ratios_per_group():
    groups = summary.ratios(ROWS)
    assert list(groups) == ["g-cpu-N10", "h-cpu"]
    assert list(groups["g-cpu-N10"]) == ["autograd", "manual", "floor"]
    assert groups["g-cpu-N10"]["manual"]["autograd_over"] == 2.0
    assert groups["h-cpu"]["manual"]["over_floor"] is None  # no floor in the group
    assert summary.table(groups)[2].split() == ["manual", "1", "ms", "2.00", "-", "1.50"]


def test_spread_across_runs():
    lines = summary.across_runs([run_json(1.0), run_json(1.25), run_json(1.0)])
    # manual's autograd/variant over the runs: 2.0, 1.6, 2.0 -> median 2.0, spread 20%
    assert "| `g-cpu-N10` | manual | 2.00 | 20.0% | - | - | 1.50 | 25.0% |" in lines
    assert "| `h-cpu` | manual | 4.00 | 20.0% | - | - | - | - |" in lines


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="clear_refs is Linux's")
def test_peak_cpu_sees_a_40_mb_tensor():
    # In a fresh process, as memory.py measures: a long-lived one may hand the tensor
    # memory it freed earlier and still holds, and then its peak does not move.
    code = ("import torch; from benchmarks.memory import peak_cpu; "
            "print(peak_cpu(lambda: torch.ones(10_000_000)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=memory.ROOT, check=True,
                          capture_output=True, text=True)
    assert 38e6 < int(done.stdout) < 48e6


def test_broadcast_runs_where_it_fits():
    assert [n for n in SIZES if too_big("broadcast", n)] == [100_000]
    assert not any(too_big("manual", n) for n in SIZES)


def test_plot_draws_the_runs(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra: pip install -e '.[plot]'")
    from benchmarks import plot

    rows = [summary.Row(f"mlp_relu_mse-cpu-N{n}", variant, t, t, None, t / floor, rounds=5)
            for n, variant, t, floor in ((10, "floor", 1.0, 1.0), (10, "autograd", 2.0, 1.0),
                                         (100, "floor", 8.0, 8.0))]
    run = {"command": "pytest benchmarks", "machine": summary.machine(threads=1),
           "groups": summary.ratios(rows)}
    (tmp_path / "run.json").write_text(json.dumps(run))
    assert plot.series([run], "cpu") == {"autograd": [(10, 2.0)], "floor": [(10, 1.0), (100, 8.0)]}
    assert plot.series([run], "cpu", "over_floor")["autograd"] == [(10, 2.0)]
    assert plot.series([run], "cpu", "autograd_over") == {}  # not timed: nothing to draw
    plot.main([str(tmp_path / "run.json"), "-o", str(tmp_path / "out.png")])
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")


def test_ratios_to_compiled_autograd():
    rows = [row("g-cpu", "autograd", 1.0)._replace(compiled_over=0.5),
            row("g-cpu", "compiled", 2.0)._replace(compiled_over=1.0),
            row("g-cpu", "manual", 1.5)._replace(compiled_over=0.75)]
    groups = summary.ratios(rows)
    assert list(groups["g-cpu"]) == ["autograd", "compiled", "manual"]
    assert summary.table(groups)[3].split() == ["manual", "1", "ms", "1.50", "0.75", "-"]
    run = {"command": "pytest benchmarks", "groups": groups,
           "machine": summary.machine(threads=1)}
    assert "| `g-cpu` | manual | 1.50 | 0.0% | 0.75 | 0.0% | - | - |" in summary.across_runs(
        [run, run])


def test_plot_gpt_draws_time_and_memory_against_context(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra: pip install -e '.[plot]'")
    from benchmarks import plot, plot_gpt

    rows = [summary.Row(f"gpt_training_step-cpu-T{t}", form, s, s, None, None, rounds=5)
            for t, form, s in ((256, "autograd", 0.3), (512, "autograd", 0.7),
                               (256, "train", 0.2), (512, "train", 0.4))]
    run = {"command": "pytest benchmarks", "machine": summary.machine(threads=1),
           "groups": summary.ratios(rows)}
    memory_run = {"suite": "gpt_context", "device": "cpu", "size": "T",
                  "bytes": {"autograd": {"256": 2**20, "512": 3 * 2**20},
                            "train": {"256": 2**19, "512": 2**20}}}
    assert plot.series([run], "cpu", groups=plot_gpt.GROUP)["train"] == [(256, 0.2), (512, 0.4)]
    assert plot_gpt.memory_series([memory_run, memory_run])["autograd"] == [
        (256, 2**20), (512, 3 * 2**20)]
    (tmp_path / "run.json").write_text(json.dumps(run))
    (tmp_path / "memory.json").write_text(json.dumps(memory_run))
    plot_gpt.main(["--runs", str(tmp_path / "run.json"), "--memory",
                   str(tmp_path / "memory.json"), "-o", str(tmp_path / "out.png")])
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")

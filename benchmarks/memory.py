"""Peak memory of one forward and backward of the MLP, per form and batch size.

    python -m benchmarks.memory                   # CPU: the README's table
    python -m benchmarks.memory --device cuda     # on a GPU

Each figure comes from a fresh process, which draws the inputs, then measures how much
memory the form adds at its peak over one call, its set-up included (``buffered``
allocates its buffers there): on the CPU the peak resident set size (``VmHWM``, its
high-water mark first reset to the current size through Linux's ``/proc/self/clear_refs``,
so that drawing the inputs in float64 does not hide it); on CUDA
``torch.cuda.max_memory_allocated``. The GEMM floor has no figure: it is
handed operands that a real backward would have had to compute.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import torch

from benchmarks.mlp_forms import DTYPE, FORMS, SIZES, article_inputs, too_big
from cases.mlp_relu_mse import ARTICLE_DIMS

MEASURED = ("autograd", "manual", "buffered", "broadcast")
ROOT = Path(__file__).resolve().parents[1]


def peak_rss() -> int:
    """The process's peak resident set size in bytes: ``VmHWM``. Not ``ru_maxrss``, which
    also keeps the peak of the image the process had before ``exec``, a fork of its parent:
    started from a large parent (pytest), it stays at the parent's size after a reset."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024  # kB


def peak_cpu(run) -> int:
    """Bytes of resident memory that ``run()`` adds at its peak (Linux only)."""
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = peak_rss()
    run()
    return peak_rss() - before


def peak_cuda(run) -> int:
    """Bytes of CUDA memory that ``run()`` allocates at its peak, beyond what was held."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def child(form: str, n: int, device: str) -> int:
    torch.set_num_threads(1)
    inputs = article_inputs(device, n)
    measure = peak_cuda if device == "cuda" else peak_cpu
    return measure(lambda: FORMS[form](inputs)())


def measured(form: str, n: int, device: str) -> int:
    """``child`` in a fresh Python process: nothing freed earlier can be reused."""
    args = [sys.executable, "-m", "benchmarks.memory", "--child", form, str(n), device]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def table(sizes, forms, device) -> list[str]:
    mib = 2**20
    lines = ["| MiB at peak | " + " | ".join(f"N={n}" for n in sizes) + " |",
             "| --- |" + " ---: |" * len(sizes),
             "| *`x`, the input, for scale* | "
             + " | ".join(f"*{n * ARTICLE_DIMS['D'] * DTYPE.itemsize / mib:.1f}*" for n in sizes)
             + " |"]
    for form in forms:
        cells = ["skipped (over 2 GB)" if too_big(form, n)
                 else f"{measured(form, n, device) / mib:.1f}" for n in sizes]
        lines.append(f"| {form} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--forms", nargs="+", default=MEASURED, choices=MEASURED)
    parser.add_argument("--child", nargs=3, metavar=("FORM", "N", "DEVICE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (torch.cuda.is_available() is False)")
    if args.child:
        form, n, device = args.child
        print(child(form, int(n), device))
    else:
        print("\n".join(table(args.sizes, args.forms, args.device)))


if __name__ == "__main__":
    main()

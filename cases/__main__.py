"""``python -m cases``: verify every hand-derived gradient here and now, or walk through one.

    python -m cases                                 every case, device and dtype
    python -m cases mlp_relu_mse --dtype float32    one case, one dtype
    python -m cases sgd_linear_regression --walkthrough
"""

import argparse
import sys
from pathlib import Path

from cases import CASES
from cases.report import (
    DTYPES,
    README_TABLES,
    devices,
    readme_block,
    table,
    update_readme,
    verify,
)
from cases.report import walkthrough as walk

NAMES = [case.name for case in CASES]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cases",
        description="Check each hand-derived gradient against autograd (every device and "
                    "dtype here) and against finite differences (float64), and print a "
                    "table; exit 1 if any disagree. Or replay a case's worked example.",
        epilog=f"cases: {', '.join(NAMES)}")
    parser.add_argument("names", nargs="*", metavar="NAME", help="cases to run (default: all)")
    parser.add_argument("--case", action="append", default=[], choices=NAMES, metavar="NAME",
                        help="a case to run; may be repeated (the same as naming it)")
    parser.add_argument("--device", action="append", choices=["cpu", "cuda"],
                        help=f"a device to run on; may be repeated (default: {devices()})")
    parser.add_argument("--dtype", action="append", choices=list(DTYPES),
                        help="a dtype to run in; may be repeated (default: all)")
    parser.add_argument("--walkthrough", action="store_true",
                        help="replay the worked example step by step instead of verifying")
    parser.add_argument("--readme-tables", action="store_true",
                        help="print the README's generated tables (markdown): the cases, "
                             "the detection limits and the bad inputs")
    parser.add_argument("--update-readme", type=Path, metavar="README",
                        help="rewrite the generated tables inside this README file")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r} (choose from {', '.join(NAMES)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    chosen = set(args.names) | set(args.case)
    cases = [case for case in CASES if not chosen or case.name in chosen]
    if args.readme_tables:
        print("\n\n".join(readme_block(name, cases) for name in README_TABLES))
        return 0
    if args.update_readme:
        args.update_readme.write_text(update_readme(args.update_readme.read_text(), cases))
        return 0
    if args.walkthrough:
        for i, case in enumerate(cases):
            print("\n" * (i > 0) + "\n".join(walk(case)))
        return 0
    wanted = args.device or devices()
    missing = set(wanted) - set(devices())
    if missing:
        print(f"--device: {sorted(missing)} not available here (have {devices()})",
              file=sys.stderr)
        return 2
    rows = verify(cases, wanted, args.dtype or list(DTYPES))
    print(table(rows))
    bad = [r for r in rows if r.verdict != "ok"]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} checks agree"
          + ("." if not bad else f"; {len(bad)} DIFFER."))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m cases``: verify handgrad's own cases here and now, or walk through one.

    python -m cases                                 every case, device and dtype
    python -m cases mlp_relu_mse --dtype float32    one case, one dtype
    python -m cases sgd_linear_regression --walkthrough
    python -m cases --update-readme README.md       the README's generated tables
"""

import sys

from cases import CASES
from handgrad.cli import main

if __name__ == "__main__":
    sys.exit(main(CASES, prog="python -m cases"))

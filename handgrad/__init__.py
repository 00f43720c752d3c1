"""handgrad: hand-derived gradients, proven as accurate as autograd's.

A ``Case`` names a module of plain tensor algebra (``SHAPES``, ``forward``, ``gradients``)
and what to differentiate; the verdict (``handgrad.verdict``) judges its gradients against
autograd's in every dtype; ``verify`` runs every check on a case and returns a ``Report``;
``check(SHAPES, **tensors)`` refuses bad input by the argument's name.
"""

from handgrad.case import DTYPES, Case, Example, registry
from handgrad.function import FunctionCase
from handgrad.judgement import Judgement, LessAccurateWarning, Verdict, VerdictError
from handgrad.measure import compare, measure
from handgrad.report import Report, verify
from handgrad.shapes import check
from handgrad.verdict import judge

__all__ = [
    "DTYPES",
    "Case",
    "Example",
    "FunctionCase",
    "Judgement",
    "LessAccurateWarning",
    "Report",
    "Verdict",
    "VerdictError",
    "check",
    "compare",
    "judge",
    "measure",
    "registry",
    "verify",
]

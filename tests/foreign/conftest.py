"""The foreign corpus (``corpus.py``), declared to handgrad's plugin: every generic check runs
on each case (ids such as
``tests/foreign/conftest.py::test_agrees_with_autograd[llmc_layer_norm-cpu-float16]``).

A failure here is the verdict rejecting right code, or right code that differs from
autograd where an input is NaN. Those known on the fixed draws are marked ``xfail`` (strict:
one that starts to pass fails, and its line here goes), each with what was measured.
"""

import pytest
from corpus import CASES

handgrad_cases = CASES

SAT = ("a saturated softmax (q x 1e3): the exact d_q, d_k are 0 and autograd's exactly 0; "
       "delta = rowsum(dout o) from the rounded o leaves float32 noise the verdict rejects")
NAN = "a NaN input: this form spreads it to entries that autograd and the truth keep finite: "
KNOWN = {
    "test_magnitudes[flash_attention-cpu-float32]": SAT,
    "test_magnitudes[flash_attention-cpu-float16]": SAT,
    **{f"test_non_finite_entries[flash_attention-cpu-{d}]":
       NAN + "p = exp(s - lse) is NaN on the masked entries of a row whose lse is NaN"
       for d in ("float64", "float32", "bfloat16", "float16")},
    **{f"test_non_finite_entries[embedding_onehot-cpu-{d}]":
       NAN + "onehot^T dout adds 0 * NaN into every row of d_wte"
       for d in ("float64", "float32", "bfloat16", "float16")},
    **{f"test_non_finite_entries[mlp_caffe-gradients_folded-cpu-{d}]":
       NAN + "w1 diag(m) w2 folds a NaN of w2 into rows whose ReLU mask is 0"
       for d in ("float64", "float32", "bfloat16", "float16")},
    "test_a_norm_over_a_constant_row[karpathy_batch_norm-exact gradient 0-cpu-float16]": (
        "less accurate, rightly rejected: the fused form drops the mean path's centring as "
        "sum_i bnraw = 0, which float16's rounded mean breaks on a constant column (bnraw "
        "-0.3, not 0): -3.2e-05 (7 ulps at the gradient's scale) where the truth is 0; "
        "autograd's NaN is float16's range, and with float32's range it gives the exact 0 "
        "here, 4.2e-06 off at most over nearby inputs: -3.2e-05 is past 2x that plus the floor"),
}
# At drawn values the same noise is a LessAccurateWarning (handgrad/generated.py); on the
# case's own values at some drawn sizes it fails, as on the fixed draws. Which dtypes' draws
# reach such a size follows the check's source (the ci profile derandomizes by it): float32
# alone on 54963ff, float32 and bfloat16 since.
KNOWN |= {f"test_generated_shapes[flash_attention-cpu-{d}]": (
    "the case's own values at a drawn size: the exact d_q of the first query, whose causal row "
    "holds one key, is 0, and autograd's an exact 0; delta = rowsum(dout o) from the rounded o "
    "leaves 6.5e-08 in float32, 6.0e-07 in bfloat16") for d in ("float32", "bfloat16")}


def pytest_collection_modifyitems(items):
    here = __file__.rpartition("/")[0]
    for item in items:
        reason = KNOWN.get(item.name) if str(item.path).startswith(here) else None
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))

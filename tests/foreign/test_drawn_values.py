"""On inputs hypothesis drew, a right form that loses digits only there warns, and a mistake
fails (``handgrad.generated``): each on a draw the dev profile found."""

import pytest
import torch
from corpus import BY_NAME

from handgrad import LessAccurateWarning, VerdictError
from handgrad.generated import generated_holds
from handgrad.mutants import planted

CE, CAFFE = BY_NAME["ce_max_shift"], BY_NAME["mlp_caffe"]


def saturated_logits(dtype):
    """Seed 22's draw: row 0 has probabilities ``1 - 1.7e-5`` and ``1.7e-5``, and cs231n's
    ``probs - 1`` at its target cancels to 0.5 % of the gradient in float32, where autograd
    takes ``-probs[1]`` through the row max's gradient."""
    logits = [float.fromhex(h) for h in ("0x1.5e9f36p+3", "0x0p+0", "-0x1.26ac4ap+4",
                                         "-0x1.25c6e6p+5")]
    return {"logits": torch.tensor(logits, dtype=dtype).reshape(2, 2),
            "target": torch.tensor([0, 0])}


def equal_products(x=1e-3):
    """Seed 28's draw in float64: the folded ``d_x`` sums 256 equal products ``w1 w2 dout``
    of 4.5e-3 in turn, 32 ulps from the exact sum, where autograd's 256 terms ``w2 dout``
    of 4.5 come to 0.7 ulp."""
    f64 = torch.float64
    return {"x": torch.full((1, 1), x, dtype=f64), "w1": torch.full((1, 1), 1e-3, dtype=f64),
            "b1": torch.zeros(1, dtype=f64), "w2": torch.full((1, 256), 0.3, dtype=f64),
            "b2": torch.zeros(256, dtype=f64), "dout": torch.full((1, 256), 15.0, dtype=f64)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_a_right_form_that_cancels_at_a_drawn_value_warns(dtype):
    inputs = saturated_logits(dtype)
    assert CE.verdict(inputs).only_less_accurate  # the verdict itself still says so
    with pytest.warns(LessAccurateWarning, match="less accurate than autograd at the drawn"):
        generated_holds(CE, "gradients", "cpu", dtype, inputs)


def test_a_float64_sum_in_turn_at_a_drawn_value_warns():
    inputs = equal_products()
    assert not CAFFE.verdict(inputs, "gradients_folded").passed
    with pytest.warns(LessAccurateWarning, match="not wrong in float32"):
        generated_holds(CAFFE, "gradients_folded", "cpu", torch.float64, inputs)


def test_an_overflow_of_rounding_noise_at_a_drawn_value_warns():
    """Seed 33's draw in float16: every score equal (inputs 2000, grad_output 4000, 2048 a
    head), so the exact ``d_q`` is 0 and autograd's an exact 0; llm.c's float32 Jacobian sum
    leaves noise that ``dq = dpreatt k`` carries past 65504."""
    att, f16 = BY_NAME["llmc_attention"], torch.float16
    inputs = {"inp": torch.full((1, 3, 3, 2, 2048), 2000.0, dtype=f16),
              "dout": torch.full((1, 3, 2, 2048), 4000.0, dtype=f16)}
    assert "non-finite where autograd's is finite" in att.verdict(inputs).failures[0].problem
    with pytest.warns(LessAccurateWarning, match="right in float64"):
        generated_holds(att, "gradients", "cpu", f16, inputs)


def test_a_float64_failure_with_no_float32_run_to_judge_it_fails():
    """The same draw, of a form that refuses float32 (as a ``FunctionCase`` declaring only
    float64 does): nothing is wider or narrower to tell rounding from a mistake, so it fails."""
    def float64_only(**inputs):
        if inputs["x"].dtype != torch.float64:
            raise ValueError(f"dtypes: declares ('float64',), got {inputs['x'].dtype}")
        return CAFFE.module.gradients_folded(**inputs)

    only = planted(CAFFE, gradients_folded=float64_only)
    with pytest.raises(VerdictError, match="d_x: manual differs from autograd"):
        generated_holds(only, "gradients_folded", "cpu", torch.float64, equal_products())


def test_a_bias_in_one_dtype_at_a_drawn_value_fails():
    """50 % off in bfloat16 alone is right in float64, as the cancellation is; the case's
    own values at the drawn sizes fail it."""
    def half_off(**inputs):
        grads = CE.module.gradients(**inputs)
        scale = 1.5 if inputs["logits"].dtype == torch.bfloat16 else 1.0
        return {k: g * scale for k, g in grads.items()}

    wrong = planted(CE, gradients=half_off)
    with pytest.raises(VerdictError, match="the case's own values at the drawn sizes"):
        generated_holds(wrong, "gradients", "cpu", torch.bfloat16,
                        saturated_logits(torch.bfloat16))


def test_a_mistake_at_a_kink_in_float64_fails():
    """A ReLU mask ``h < 0`` where it should be ``h <= 0``, at ``x = 0`` (so ``h = 0``): off
    in float64 and wrong in float32 too, so it fails."""
    def kink(**inputs):
        grads = CAFFE.module.gradients_folded(**inputs)
        h = torch.addmm(inputs["b1"], inputs["x"], inputs["w1"])
        dh = (inputs["dout"] @ inputs["w2"].mT).masked_fill(h < 0, 0)
        return {**grads, "h": dh, "x": dh @ inputs["w1"].mT}

    wrong = planted(CAFFE, gradients_folded=kink)
    with pytest.raises(VerdictError, match=r"d_x: manual differs from autograd by 1\.15e"):
        generated_holds(wrong, "gradients_folded", "cpu", torch.float64, equal_products(x=0.0))

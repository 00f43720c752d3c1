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
    """Seed 28's draw in float64, with 1024 outputs: the folded ``d_x`` is a sum of 1024
    equal products ``w1 w2 dout`` of 4.5e-3, where autograd's terms ``w2 dout`` are 4.5."""
    f64 = torch.float64
    return {"x": torch.full((1, 1), x, dtype=f64), "w1": torch.full((1, 1), 1e-3, dtype=f64),
            "b1": torch.zeros(1, dtype=f64), "w2": torch.full((1, 1024), 0.3, dtype=f64),
            "b2": torch.zeros(1024, dtype=f64), "dout": torch.full((1, 1024), 15.0, dtype=f64)}


def folded_in_turn(**inputs):
    """Caffe's folded ``d_x`` with its sum over the outputs taken one term after another
    (``cumsum``, in turn on every CPU, as the gemv of seed 28 summed 256): 1024 equal terms
    drift 26 times autograd's float64 rounding (allowed 6), and as far in float32."""
    grads = CAFFE.module.gradients_folded(**inputs)
    h = torch.addmm(inputs["b1"], inputs["x"], inputs["w1"])
    folded = (inputs["w1"] * (h > 0).to(h.dtype)[:, None, :]) @ inputs["w2"]  # (N, D, O)
    return {**grads, "x": (folded * inputs["dout"][:, None, :]).cumsum(-1)[..., -1]}


IN_TURN = planted(CAFFE, gradients_folded=folded_in_turn)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_a_right_form_that_cancels_at_a_drawn_value_warns(dtype):
    inputs = saturated_logits(dtype)
    assert CE.verdict(inputs).only_less_accurate  # the verdict itself still says so
    with pytest.warns(LessAccurateWarning, match="less accurate than autograd at the drawn"):
        generated_holds(CE, "gradients", "cpu", dtype, inputs)


def test_a_float64_sum_in_turn_at_a_drawn_value_warns():
    inputs = equal_products()
    assert not IN_TURN.verdict(inputs, "gradients_folded").passed
    with pytest.warns(LessAccurateWarning, match="2\\^14.5 times smaller than in float32"):
        generated_holds(IN_TURN, "gradients_folded", "cpu", torch.float64, inputs)


def test_a_float64_mistake_below_float32s_digits_fails():
    """A GELU derivative cut to ``dy`` past ``x = 6`` is 1.8e-9 off at 6.5: float32 rounds
    the exact value to 1 and passes it, but the error did not shrink from there to float64,
    so it is a mistake, not rounding."""
    gelu = BY_NAME["gelu_erf_exp"]

    def cut(**inputs):
        grads = gelu.module.gradients(**inputs)
        return {**grads, "x": torch.where(inputs["x"] > 6, inputs["dy"], grads["x"])}

    wrong = planted(gelu, gradients=cut)
    inputs = {"x": torch.full((1, 1), 6.5, dtype=torch.float64),
              "dy": torch.ones(1, 1, dtype=torch.float64)}
    assert wrong.verdict({k: t.float() for k, t in inputs.items()}).passed
    with pytest.raises(VerdictError, match=r"d_x: manual differs from autograd by 1\.7"):
        generated_holds(wrong, "gradients", "cpu", torch.float64, inputs)


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
    """The sum in turn, of a form that refuses float32 (as a ``FunctionCase`` declaring only
    float64 does): nothing is left to tell rounding from a mistake, so it fails."""
    def float64_only(**inputs):
        if inputs["x"].dtype != torch.float64:
            raise ValueError(f"dtypes: declares ('float64',), got {inputs['x'].dtype}")
        return folded_in_turn(**inputs)

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
    with pytest.raises(VerdictError, match="d_x: manual differs from autograd"):
        generated_holds(wrong, "gradients_folded", "cpu", torch.float64, equal_products(x=0.0))

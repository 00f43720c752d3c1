"""Correct backward passes written the way other projects write them, declared to handgrad's
plugin: every generic check runs on each (ids such as
``tests/foreign/conftest.py::test_agrees_with_autograd[llmc_layer_norm-cpu-float16]``).
A failure here is the verdict rejecting right code (see README.md in this folder)."""

from dataclasses import fields

import karpathy_batch_norm
import llmc_layer_norm

from handgrad import Case

# A statistic over n - 1 is undefined for n = 1: the smallest size, where Case can take it.
_LEAST = "least" in {f.name for f in fields(Case)}


def at_least(**sizes: int) -> dict:
    return {"least": sizes} if _LEAST else {}


handgrad_cases = [
    Case(name="llmc_layer_norm", source="karpathy/llm.c train_gpt2.c layernorm_backward",
         formula="out = (inp - mean) rstd weight + bias, rstd = 1/sqrt(var + eps)",
         closed_form="dinp = (dnorm - <dnorm> - norm <dnorm norm>) rstd",
         module=llmc_layer_norm, output="out", wrt=("inp", "weight", "bias"),
         grad_output="dout", dims={"B": 2, "T": 3, "C": 8}),
    Case(name="karpathy_batch_norm", source="karpathy makemore part 4, becoming a backprop ninja",
         formula="hpreact = bngain (hprebn - mean) / sqrt(var_{n-1} + eps) + bnbias",
         closed_form="dhprebn = bngain bnvar_inv / n (n d - sum d - n/(n-1) bnraw sum d bnraw)",
         module=karpathy_batch_norm, output="hpreact", wrt=("hprebn", "bngain", "bnbias"),
         grad_output="dhpreact", dims={"N": 32, "C": 8}, **at_least(N=2)),
]

"""The foreign corpus: correct backward passes written the way other projects write them,
each a handgrad module case. Every one agrees with autograd to float64's rounding and passes
gradcheck; a check that fails on one is the verdict rejecting right code."""

import ce_logsumexp
import ce_max_shift
import embedding_index_add
import embedding_onehot
import flash_attention
import gelu_erf_exp
import gelu_factored
import karpathy_batch_norm
import layer_norm_f32acc
import llmc_attention
import llmc_gelu
import llmc_layer_norm
import mlp_caffe
import rms_norm

from handgrad import Case, registry

LLMC = "karpathy/llm.c train_gpt2.c"
CASES = registry(
    Case(name="llmc_layer_norm", source=f"{LLMC} layernorm_backward",
         formula="out = (inp - mean) rstd weight + bias, rstd = 1/sqrt(var + eps)",
         closed_form="dinp = (dnorm - <dnorm> - norm <dnorm norm>) rstd",
         module=llmc_layer_norm, output="out", wrt=("inp", "weight", "bias"),
         grad_output="dout", dims={"B": 2, "T": 3, "C": 8}),
    Case(name="karpathy_batch_norm", source="karpathy makemore part 4, becoming a backprop ninja",
         formula="hpreact = bngain (hprebn - mean) / sqrt(var_{n-1} + eps) + bnbias",
         closed_form="dhprebn = bngain bnvar_inv / n (n d - sum d - n/(n-1) bnraw sum d bnraw)",
         module=karpathy_batch_norm, output="hpreact", wrt=("hprebn", "bngain", "bnbias"),
         grad_output="dhpreact", dims={"N": 32, "C": 8},
         least={"N": 2},  # a statistic over n - 1 needs n >= 2
         # As its notebook runs it, in float32: the fused line forms bngain * bnvar_inv
         # (2000 * 316 on a constant column) and n * dhpreact, past float16's 65504 where
         # autograd never does (test_corpus.py holds the reason to a draw).
         full_precision_only=("gradients",)),
    Case(name="layer_norm_f32acc", source="a half-precision fused layer norm kernel (Apex)",
         formula="y = ((x - mu) rstd gamma + beta) in float32, rounded once",
         closed_form="dx = rstd / C (C g - sum g - xhat sum g xhat), g = dy gamma, float32",
         module=layer_norm_f32acc, output="y", wrt=("x", "gamma", "beta"), grad_output="dy",
         dims={"N": 6, "C": 16}),
    Case(name="rms_norm", source="RMSNorm (Zhang and Sennrich 2019), as LLaMA uses it",
         formula="y = x / sqrt(<x^2> + eps) weight",
         closed_form="dx = rstd (g - xhat <g xhat>) = g rstd - x rstd^3 <g x>",
         module=rms_norm, output="y", wrt=("x", "weight"), grad_output="dy",
         dims={"N": 6, "C": 16}, variants=("gradients_cubed",),
         # rstd^3 is 1e9 where x^2 underflows float16 and rstd = 1/sqrt(eps) = 1000; the
         # normalised form's g xhat passes 65504 where g does not (as fused kernels keep
         # it, in float32).
         full_precision_only=("gradients", "gradients_cubed")),
    Case(name="ce_logsumexp", source=f"{LLMC} crossentropy_softmax_backward",
         formula="loss = mean(logsumexp(logits) - logits[target])",
         closed_form="dlogits = (exp(logits - lse) - onehot) / N",
         module=ce_logsumexp, output="loss", wrt=("logits",), dims={"N": 8, "V": 10}),
    Case(name="ce_max_shift", source="cs231n softmax_loss_vectorized",
         formula="loss = -mean((logits - max) - log sum exp(logits - max))[target]",
         closed_form="dlogits = (counts * (1 / sum counts) - onehot) * (1/N)",
         module=ce_max_shift, output="loss", wrt=("logits",), dims={"N": 8, "V": 10}),
    Case(name="llmc_gelu", source=f"{LLMC} gelu_backward",
         formula="out = 0.5 x (1 + tanh(s (x + 0.044715 x^3)))",
         closed_form="dinp = dout (0.5 (1 + tanh u) + 0.5 x / cosh(u)^2 s (1 + 3 k x^2))",
         module=llmc_gelu, output="out", wrt=("inp",), grad_output="dout",
         dims={"N": 8, "D": 5}),
    Case(name="gelu_factored", source="the tanh GELU's derivative, 0.5 (1 + t) factored out",
         formula="y = 0.5 x (1 + tanh(s x (1 + k x^2)))",
         closed_form="dx = dy 0.5 (1 + t) (1 + x (1 - t) s (1 + 3 k x^2))",
         module=gelu_factored, output="y", wrt=("x",), grad_output="dy",
         dims={"N": 8, "D": 5}),
    Case(name="gelu_erf_exp", source="pytorch GeluBackward (CPU kernel), erf GELU",
         formula="y = x 0.5 (1 + erf(x / sqrt(2)))",
         closed_form="dx = dy (cdf + x exp(-x^2 / 2) / sqrt(2 pi))",
         module=gelu_erf_exp, output="y", wrt=("x",), grad_output="dy", dims={"N": 8, "D": 5}),
    Case(name="llmc_attention", source=f"{LLMC} attention_backward",
         formula="out = softmax(mask(q k^T / sqrt(HS))) v, q k v packed in inp",
         closed_form="dpreatt[t3] = sum_t2 att[t2] (1[t2 = t3] - att[t3]) datt[t2]",
         module=llmc_attention, output="out", wrt=("inp",), grad_output="dout",
         dims={"B": 2, "T": 5, "NH": 2, "HS": 4}, most={"T": 16}),
    Case(name="flash_attention", source="FlashAttention-2 backward (Dao 2023, Algorithm 2)",
         formula="o = exp(s - lse) v, s = mask(q k^T / sqrt(D))",
         closed_form="ds = p (dout v^T - rowsum(dout o)), p recomputed from lse",
         module=flash_attention, output="o", wrt=("q", "k", "v"), grad_output="dout",
         dims={"B": 2, "H": 2, "T": 5, "D": 4}, most={"T": 64}),
    Case(name="embedding_index_add", source="an embedding backward by index_add_",
         formula="out = wte[idx] + wpe", closed_form="dwte = index_add(idx, dout)",
         module=embedding_index_add, output="out", wrt=("wte", "wpe"), grad_output="dout",
         dims={"B": 4, "T": 8, "V": 16, "C": 8}),
    Case(name="embedding_onehot", source="an embedding backward as a one-hot matmul (TPU)",
         formula="out = wte[idx] + wpe", closed_form="dwte = onehot(idx)^T dout",
         module=embedding_onehot, output="out", wrt=("wte", "wpe"), grad_output="dout",
         dims={"B": 4, "T": 8, "V": 16, "C": 8}),
    Case(name="mlp_caffe", source="Caffe InnerProductLayer: addmm, bias by a ones gemv",
         formula="out = addmm(b2, relu(addmm(b1, x, w1)), w2)",
         closed_form="dh = (dout w2^T) (h > 0); db = dh^T 1; dx = dh w1^T or folded",
         module=mlp_caffe, output="out", wrt=("x", "w1", "b1", "w2", "b2"), grad_output="dout",
         dims={"N": 16, "D": 6, "H": 8, "O": 4}, variants=("gradients_folded",),
         # w1 diag(m) w2, a product of weights that autograd never forms: 2e6 at weights
         # of 1000, inf in float16 (Caffe runs in float32).
         full_precision_only=("gradients_folded",)),
)
BY_NAME = {case.name: case for case in CASES}

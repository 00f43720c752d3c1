"""Token and position embeddings: a lookup forward, a scatter-add backward.

Beyond the articles (issue 11). The ids ``idx`` are an integer input, drawn with repeats,
and not differentiated; out-of-range or floating-point ids are refused by name.
"""

import torch.nn.functional as F

from handgrad import Case
from manual_grads import embedding

CASE = Case(
    name="embedding",
    source="beyond the articles: token and position embeddings, out = wte[idx] + wpe",
    formula="out = wte[idx] + wpe",
    closed_form="d_wte = scatter-add of v into the rows idx, d_wpe = sum_b v",
    module=embedding,
    output="out",
    wrt=("wte", "wpe"),
    grad_output="v",
    dims={"B": 4, "T": 8, "V": 16, "C": 8},
    library_op=lambda idx, wte, wpe: F.embedding(idx, wte) + wpe,
)

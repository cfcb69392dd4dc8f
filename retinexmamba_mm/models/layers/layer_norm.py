"""``nn.LayerNorm`` over the last axis, computed by ``ops.layer_norm`` (a fused kernel on CUDA).

Same parameters, keys and results as ``nn.LayerNorm``; used for the channels-last norms of SS2D
(out_norm) and the IFSSM block (the FFN's pre-norm).
"""
from torch import nn

from ...ops.layer_norm import layer_norm


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm(channels)`` whose forward dispatches to ``ops.layer_norm`` (its backend
    from ``$RETINEXMAMBA_LAYER_NORM``, default auto)."""

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, self.eps)

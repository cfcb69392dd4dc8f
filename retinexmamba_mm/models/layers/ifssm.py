"""Architecture: one block of the paper's IFSSM (Illumination-Fused State Space Model).

    y = IFA(x, illu_fea)
    x = SS2D(y) + x              (the residual is on the block input x, not on y)
    x = FFN(LayerNorm(x)) + x    (pre-norm FFN; channels-last between SS2D and the FFN)

The ablation switches remove IFA (SS2D sees x) or SS2D (replaced by identity: x = IFA(x) + x).
Maps come and go in channels-last memory (the restorer's layout), so the permutes between
(B, C, H, W) and (B, H, W, C) are views and every sum adds tensors of one layout.
"""
from torch import nn

from .feed_forward import FeedForward
from .ifa import IFA
from .layer_norm import LayerNorm
from .ss2d import SS2D


class IFSSMBlock(nn.Module):
    """One IFSSM block on (B, C, H, W) features, guided by ``illu_fea`` of the same shape.

    Args:
        channels (int): Width C.
        num_heads (int): IFA heads (C // n_feat in the restorer).
        d_state (int): SS2D state size.
        use_ifa (bool): Keep IFA. Default: True.
        use_ss2d (bool): Keep SS2D. Default: True.
        scan_backend (str): Selective-scan backend of SS2D. Default: 'auto'.
    """

    def __init__(self, channels, num_heads, d_state, use_ifa=True, use_ss2d=True,
                 scan_backend='auto'):
        super().__init__()
        if not (use_ifa or use_ss2d):
            raise ValueError('an IFSSM block needs IFA or SS2D (use_ifa=False together with '
                             'use_ss2d=False leaves no token mixer)')
        self.ifa = IFA(channels, num_heads) if use_ifa else None
        self.ss2d = SS2D(channels, d_state, scan_backend=scan_backend) if use_ss2d else None
        self.ffn_norm = LayerNorm(channels)
        self.ffn = FeedForward(channels)

    def forward(self, x, illu_fea):
        y = x if self.ifa is None else self.ifa(x, illu_fea)
        y = y.permute(0, 2, 3, 1)
        x = x.permute(0, 2, 3, 1) + (y if self.ss2d is None else self.ss2d(y))
        x = x + self.ffn(self.ffn_norm(x))
        return x.permute(0, 3, 1, 2)

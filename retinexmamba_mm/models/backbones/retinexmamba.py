"""Architecture: RetinexMamba (Bai et al., 2024), the whole network.

Each stage: ``illu_fea, L = estimator(I); I_lu = I * L + I; out = restorer(I_lu, illu_fea)``;
stages run in sequence. Plain torch; ``retinexmamba_mm.registry`` registers it into MMagic's
MODELS.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..layers import IlluminationEstimator, Restorer
from ..layers.ss2d import SS2D, check_scan_backend

# Input sides must be multiples of this (two stride-2 downsamplings).
SIZE_DIVISOR = 4


class RetinexStage(nn.Module):
    """One Retinex stage: illumination estimator + illumination-guided restorer.

    Without the estimator (ablation) the image is not lit up (L = 0) and ``illu_fea`` is a plain
    3x3 conv of the image, so the restorer's blocks still receive a guidance feature.
    """

    def __init__(self, in_channels, out_channels, n_feat, use_illumination_estimator,
                 **restorer_cfg):
        super().__init__()
        self.estimator, self.illu_embedding = None, None
        if use_illumination_estimator:
            self.estimator = IlluminationEstimator(n_feat, in_channels, in_channels)
        else:
            self.illu_embedding = nn.Conv2d(in_channels, n_feat, 3, padding=1)
        self.restorer = Restorer(in_channels, out_channels, n_feat, **restorer_cfg)

    def forward(self, img):
        """Returns ``(output, illumination_map or None)``."""
        if self.estimator is None:
            return self.restorer(img, self.illu_embedding(img)), None
        illu_fea, illumination = self.estimator(img)
        lit = img * illumination + img
        return self.restorer(lit, illu_fea), illumination


class RetinexMamba(nn.Module):
    """RetinexMamba low-light enhancement network.

    ``forward(x)`` returns the enhanced image, the size of x: sides that are not multiples of 4
    are reflect-padded right/bottom and cropped back (as the authors' test script does). The
    restorers work in channels-last memory (converting their inputs once); the estimators and
    the outputs keep the memory layout of x.

    The paper's LOL models use the defaults (4,589,001 parameters). Variants, selected by
    constructor arguments (used by the ablation configs):

    =============================  =====================================================
    argument                       effect
    =============================  =====================================================
    use_illumination_estimator     False: L = 0 (no lighting-up), illu_fea = conv3x3(I)
    use_ifa                        False: IFSSM blocks without IFA (SS2D sees the input)
    use_ss2d                       False: IFSSM blocks without SS2D (x = IFA(x) + x)
    block_type='igab'              Retinexformer's IGAB blocks instead of IFSSM (the
                                   baseline: 1,605,701 parameters with the LOL settings)
    =============================  =====================================================

    Args:
        in_channels (int): Image channels. Default: 3.
        out_channels (int): Output channels. Default: 3.
        n_feat (int): Width of the first level (levels: n_feat, 2x, 4x). Default: 40.
        stage (int): Number of stages run in sequence. Default: 1.
        num_blocks (Sequence[int]): Blocks per level: (level 0, level 1, bottleneck); the
            decoders mirror the encoders. Default: (1, 2, 2).
        d_state (int): SS2D state size at the first encoder level (doubles per level; the
            decoders use twice their encoder's, as the authors' model does). Default: 16.
        scan_backend (str): Selective-scan backend of every SS2D: 'auto', 'torch',
            'mamba_ssm' or 'triton' (see ``retinexmamba_mm.ops``). Default: 'auto'.
        use_illumination_estimator (bool): See the table. Default: True.
        use_ifa (bool): See the table. Default: True.
        use_ss2d (bool): See the table. Default: True.
        block_type (str): 'ifssm' (RetinexMamba) or 'igab' (Retinexformer). Default: 'ifssm'.
    """

    def __init__(self, in_channels=3, out_channels=3, n_feat=40, stage=1, num_blocks=(1, 2, 2),
                 d_state=16, scan_backend='auto', use_illumination_estimator=True, use_ifa=True,
                 use_ss2d=True, block_type='ifssm'):
        super().__init__()
        if stage < 1:
            raise ValueError(f'stage must be >= 1, got {stage}')
        if in_channels != out_channels and stage > 1:
            raise ValueError('several stages need in_channels == out_channels (each stage '
                             'takes the previous output)')
        check_scan_backend(scan_backend)
        self.stages = nn.ModuleList(
            RetinexStage(in_channels, out_channels, n_feat, use_illumination_estimator,
                         num_blocks=tuple(num_blocks), d_state=d_state, block_type=block_type,
                         use_ifa=use_ifa, use_ss2d=use_ss2d, scan_backend=scan_backend)
            for _ in range(stage))

    def set_scan_backend(self, name):
        """Switch the selective-scan backend of every SS2D ('auto', 'torch', ...)."""
        check_scan_backend(name)
        for module in self.modules():
            if isinstance(module, SS2D):
                module.scan_backend = name
        return self

    def forward(self, x, return_illumination=False):
        """Enhance x (B, C, H, W); with ``return_illumination`` also return the last stage's
        illumination map L (zeros without the estimator), both cropped to x's size."""
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % SIZE_DIVISOR, -width % SIZE_DIVISOR
        if pad_h or pad_w:
            if pad_h >= height or pad_w >= width:
                raise ValueError(f'RetinexMamba needs images of at least 3x3 pixels to reflect-'
                                 f'pad them to a multiple of {SIZE_DIVISOR}; got {height}x{width}')
            x = F.pad(x, (0, pad_w, 0, pad_h), mode='reflect')
        out = x
        for stage in self.stages:
            out, illumination = stage(out)
        out = out[..., :height, :width]
        if not return_illumination:
            return out
        if illumination is None:
            return out, torch.zeros_like(out)
        return out, illumination[..., :height, :width]

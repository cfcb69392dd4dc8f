"""Architecture: the paper's Illumination-guided Restorer (the authors' "Restorer"/"denoiser").

A two-level U-shape on the lit-up image ``I_lu``, every level guided by the illumination feature:

    embedding 3x3 conv -> [level 0: blocks, downsample features and illu_fea (4x4 s2 convs)]
    -> [level 1: same] -> bottleneck blocks
    -> [level 1: 2x2 s2 transposed conv, concat skip, 1x1 fuse conv, blocks]
    -> [level 0: same] -> mapping 3x3 conv, + I_lu

Level i has width C * 2^i. Blocks are IFSSM blocks (or Retinexformer's IGAB for the baseline).
SS2D state sizes: encoder level i: d_state * 2^i, bottleneck d_state * 4, decoder level 1:
d_state * 4, decoder level 0: d_state * 2 -- the decoder's doubled d_state is the authors' quirk
(they build each decoder level before halving d_state), kept because the weights depend on it.

Init: Linear weights trunc-normal (std 0.02), Linear biases 0, LayerNorms 1/0; convs keep
PyTorch's defaults; SS2D's scan parameters keep their own init.

Memory layout: channels-last throughout. The embedding output and ``illu_fea`` are converted
once; convs then run NHWC and return channels-last maps, and the blocks' (B, H, W, C) views are
free. The output takes the layout of the input image.
"""
import torch
from torch import nn

from .channel_layer_norm import ChannelLayerNorm
from .ifssm import IFSSMBlock
from .igab import IGABBlock

NUM_LEVELS = 2


class BlockStack(nn.ModuleList):
    """Blocks applied in turn, all guided by the same illumination feature."""

    def forward(self, x, illu_fea):
        for block in self:
            x = block(x, illu_fea)
        return x


class Restorer(nn.Module):
    """Illumination-guided U-shaped restorer.

    Args:
        in_channels (int): Image channels. Default: 3.
        out_channels (int): Output channels. Default: 3.
        n_feat (int): Width C of level 0 (also the IFA/IGAB head width). Default: 40.
        num_blocks (Sequence[int]): Blocks at level 0, level 1 and the bottleneck (decoders
            mirror the encoders). Default: (1, 2, 2).
        d_state (int): SS2D state size at encoder level 0. Default: 16.
        block_type (str): 'ifssm' (RetinexMamba) or 'igab' (Retinexformer). Default: 'ifssm'.
        use_ifa (bool): IFSSM blocks keep IFA. Default: True.
        use_ss2d (bool): IFSSM blocks keep SS2D. Default: True.
        scan_backend (str): Selective-scan backend of every SS2D. Default: 'auto'.
    """

    def __init__(self, in_channels=3, out_channels=3, n_feat=40, num_blocks=(1, 2, 2),
                 d_state=16, block_type='ifssm', use_ifa=True, use_ss2d=True,
                 scan_backend='auto'):
        super().__init__()
        if len(num_blocks) != NUM_LEVELS + 1:
            raise ValueError(f'num_blocks needs {NUM_LEVELS + 1} entries (level 0, level 1, '
                             f'bottleneck), got {num_blocks}')
        if block_type not in ('ifssm', 'igab'):
            raise ValueError(f"block_type must be 'ifssm' or 'igab', got {block_type!r}")
        if block_type == 'igab' and not (use_ifa and use_ss2d):
            raise ValueError('use_ifa / use_ss2d switch parts of IFSSM blocks; they do not apply '
                             "to block_type='igab'")

        def stack(width, count, state):
            heads = width // n_feat
            if block_type == 'igab':
                return BlockStack([IGABBlock(width, n_feat, heads) for _ in range(count)])
            return BlockStack([
                IFSSMBlock(width, heads, state, use_ifa, use_ss2d, scan_backend)
                for _ in range(count)])

        widths = [n_feat * 2**i for i in range(NUM_LEVELS + 1)]
        self.embedding = nn.Conv2d(in_channels, n_feat, 3, padding=1, bias=False)
        self.encoders = nn.ModuleList(
            nn.ModuleDict(dict(
                blocks=stack(widths[i], num_blocks[i], d_state * 2**i),
                down_feat=nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1, bias=False),
                down_illu=nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1, bias=False)))
            for i in range(NUM_LEVELS))
        self.bottleneck = stack(widths[-1], num_blocks[-1], d_state * 2**NUM_LEVELS)
        self.decoders = nn.ModuleList(
            nn.ModuleDict(dict(
                up=nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2),
                fuse=nn.Conv2d(widths[i + 1], widths[i], 1, bias=False),
                blocks=stack(widths[i], num_blocks[i], d_state * 2**(i + 1))))
            for i in range(NUM_LEVELS))
        self.mapping = nn.Conv2d(n_feat, out_channels, 3, padding=1, bias=False)
        self.apply(_init_linear_and_norm)

    def forward(self, x, illu_fea):
        # channels-last memory from here on (see the module docstring)
        fea = self.embedding(x).contiguous(memory_format=torch.channels_last)
        illu_fea = illu_fea.contiguous(memory_format=torch.channels_last)
        skips = []
        for level in self.encoders:
            fea = level['blocks'](fea, illu_fea)
            skips.append((fea, illu_fea))
            fea = level['down_feat'](fea)
            illu_fea = level['down_illu'](illu_fea)
        fea = self.bottleneck(fea, illu_fea)
        for level, (skip, illu_fea) in zip(reversed(self.decoders), reversed(skips)):
            # channels-last, as both parts are (torch.cat falls back to NCHW on mixed layouts)
            fea = level['fuse'](torch.cat([level['up'](fea), skip], dim=1))
            fea = level['blocks'](fea, illu_fea)
        return x + self.mapping(fea)  # x first: the sum takes the layout of the input image


@torch.no_grad()
def _init_linear_and_norm(module):
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.LayerNorm, ChannelLayerNorm)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)

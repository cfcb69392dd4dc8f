"""The authors' checkpoint layout (BasicSR .pth files) mapped onto ours. The only place that
knows both layouts.

Their files are dicts whose ``params`` entry holds the network's state dict, keys such as
``body.0.Restorer.encoder_layers.0.0.blocks.0.1.A_logs`` (``module.``-prefixed when saved from
DataParallel; ``denoiser`` instead of ``Restorer`` in an earlier revision of their code). Their
module tree, read from YhuoyuH/RetinexMamba (``RetinexMamba_arch.py``) and, for the baseline,
caiyuanhao1998/Retinexformer (``RetinexFormer_arch.py``):

    body.<stage>.estimator.{conv1, depth_conv, conv2}
    body.<stage>.Restorer.embedding / mapping
    body.<stage>.Restorer.encoder_layers.<i>.{0: IFSSM, 1: feature downsample, 2: illu downsample}
    body.<stage>.Restorer.bottleneck                                         (an IFSSM)
    body.<stage>.Restorer.decoder_layers.<j>.{0: ConvTranspose2d, 1: 1x1 fusion, 2: IFSSM}
        (j = 0 is the deepest decoder, our level 1)
    IFSSM: .blocks.<b>.{0: IFA, 1: SS2D, 2: PreNorm(norm, fn.net.{0, 2, 4})}
    IFA:   conv1, norm1.body, attn.{temperature, kv, kv_dwconv, q, q_dwconv, project_out},
           norm2.body, ffn.{project_in, dwconv, project_out}
    SS2D:  the same parameter names as ours
    Retinexformer's IGAB: .blocks.<b>.{0: IG_MSA (to_q, to_k, to_v, rescale, proj, pos_emb),
           1: PreNorm}

Which entry of a .pth is used: ``params``; ``params_ema`` only when ``params`` is absent (BasicSR
writes both when EMA is on; the authors trained without EMA). A bare state dict is accepted too.
"""
import re

import torch

from .backbones import RetinexMamba

__all__ = ['convert_official_state_dict', 'load_official_checkpoint', 'is_official_checkpoint',
           'official_arch']

_RESTORER = r'(?:Restorer|denoiser)'

# (authors' key pattern, our key) for everything outside the blocks, tried in order.
_OUTER_RULES = [
    (r'body\.(\d+)\.estimator\.conv1\.(.+)', r'stages.\1.estimator.proj_in.\2'),
    (r'body\.(\d+)\.estimator\.depth_conv\.(.+)', r'stages.\1.estimator.grouped_conv.\2'),
    (r'body\.(\d+)\.estimator\.conv2\.(.+)', r'stages.\1.estimator.proj_out.\2'),
    (rf'body\.(\d+)\.{_RESTORER}\.(embedding|mapping)\.(.+)', r'stages.\1.restorer.\2.\3'),
    (rf'body\.(\d+)\.{_RESTORER}\.encoder_layers\.(\d+)\.1\.(.+)',
     r'stages.\1.restorer.encoders.\2.down_feat.\3'),
    (rf'body\.(\d+)\.{_RESTORER}\.encoder_layers\.(\d+)\.2\.(.+)',
     r'stages.\1.restorer.encoders.\2.down_illu.\3'),
]
# Blocks: (authors' prefix pattern, our prefix); the rest of the key goes through _BLOCK_RULES.
_BLOCK_PREFIXES = [
    (rf'body\.(\d+)\.{_RESTORER}\.encoder_layers\.(\d+)\.0\.blocks\.(\d+)\.',
     lambda m: f'stages.{m[1]}.restorer.encoders.{m[2]}.blocks.{m[3]}.'),
    (rf'body\.(\d+)\.{_RESTORER}\.bottleneck\.blocks\.(\d+)\.',
     lambda m: f'stages.{m[1]}.restorer.bottleneck.{m[2]}.'),
    (rf'body\.(\d+)\.{_RESTORER}\.decoder_layers\.(\d+)\.2\.blocks\.(\d+)\.',
     lambda m: f'stages.{m[1]}.restorer.decoders.{_level(m[2])}.blocks.{m[3]}.'),
]
_DECODER_LAYERS = [
    (rf'body\.(\d+)\.{_RESTORER}\.decoder_layers\.(\d+)\.0\.(.+)', 'up'),
    (rf'body\.(\d+)\.{_RESTORER}\.decoder_layers\.(\d+)\.1\.(.+)', 'fuse'),
]
# Inside one block. IFSSM: 0 IFA, 1 SS2D, 2 PreNorm(FFN); IGAB: 0 IG_MSA, 1 PreNorm(FFN).
_FFN = [(r'norm\.(.+)', r'ffn_norm.\1'), (r'fn\.net\.0\.(.+)', r'ffn.proj_in.\1'),
        (r'fn\.net\.2\.(.+)', r'ffn.dwconv.\1'), (r'fn\.net\.4\.(.+)', r'ffn.proj_out.\1')]
_BLOCK_RULES = {
    'ifssm': [
        (r'0\.conv1\.(.+)', r'ifa.illu_proj.\1'),
        (r'0\.norm1\.body\.(.+)', r'ifa.norm.\1'),
        (r'0\.norm2\.body\.(.+)', r'ifa.ffn_norm.\1'),
        (r'0\.attn\.temperature', r'ifa.attn.temperature'),
        (r'0\.attn\.kv\.(.+)', r'ifa.attn.to_kv.\1'),
        (r'0\.attn\.kv_dwconv\.(.+)', r'ifa.attn.kv_dwconv.\1'),
        (r'0\.attn\.q\.(.+)', r'ifa.attn.to_q.\1'),
        (r'0\.attn\.q_dwconv\.(.+)', r'ifa.attn.q_conv.\1'),
        (r'0\.attn\.project_out\.(.+)', r'ifa.attn.proj_out.\1'),
        (r'0\.ffn\.project_in\.(.+)', r'ifa.ffn.proj_in.\1'),
        (r'0\.ffn\.dwconv\.(.+)', r'ifa.ffn.dwconv.\1'),
        (r'0\.ffn\.project_out\.(.+)', r'ifa.ffn.proj_out.\1'),
        (r'1\.(.+)', r'ss2d.\1'),
    ] + [('2\\.' + a, b) for a, b in _FFN],
    'igab': [(r'0\.(.+)', r'msa.\1')] + [('1\\.' + a, b) for a, b in _FFN],
}
_LEVELS = 2  # the authors' restorer always has two levels


def _level(decoder_index):
    return _LEVELS - 1 - int(decoder_index)


def _network_state(obj):
    """The network state dict inside a .pth object, without a ``module.`` prefix, or None."""
    if not isinstance(obj, dict):
        return None
    for entry in ('params', 'params_ema'):
        if isinstance(obj.get(entry), dict):
            obj = obj[entry]
            break
    if not obj or not all(isinstance(k, str) for k in obj):
        return None
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in obj.items()}
    if not all(k.startswith('body.') for k in state):
        return None
    return state


def is_official_checkpoint(obj):
    """True for an authors' .pth object (``params`` dict, or a bare state dict) of this network."""
    return _network_state(obj) is not None


def _block_type(state):
    return 'igab' if any('.blocks.' in k and '.0.to_q.' in k for k in state) else 'ifssm'


def _map_key(key, block_type):
    """Our key for one authors' key, or None when it fits no rule."""
    for pattern, replacement in _OUTER_RULES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, replacement, key)
    for pattern, name in _DECODER_LAYERS:
        m = re.fullmatch(pattern, key)
        if m:
            return f'stages.{m[1]}.restorer.decoders.{_level(m[2])}.{name}.{m[3]}'
    for pattern, prefix in _BLOCK_PREFIXES:
        m = re.match(pattern, key)
        if m:
            rest = key[m.end():]
            for inner, replacement in _BLOCK_RULES[block_type]:
                if re.fullmatch(inner, rest):
                    return prefix(m) + re.sub(inner, replacement, rest)
            return None
    return None


def official_arch(state_dict):
    """The ``RetinexMamba`` arguments that an authors' state dict was trained with.

    Read from the shapes and key counts: stages, n_feat, num_blocks, d_state, block_type.
    """
    state = _network_state(state_dict)
    if state is None:
        raise ValueError('not an authors\' RetinexMamba/Retinexformer state dict (expected keys '
                         '"body.<stage>...", optionally under "params" and "module.")')
    block_type = _block_type(state)

    def blocks(pattern):
        found = {int(m[1]) for k in state for m in [re.match(pattern, k)] if m}
        return max(found) + 1 if found else 0

    try:
        n_feat = state['body.0.estimator.conv1.weight'].shape[0]
        arch = dict(
            n_feat=n_feat,
            stage=blocks(r'body\.(\d+)\.'),
            num_blocks=(blocks(rf'body\.0\.{_RESTORER}\.encoder_layers\.0\.0\.blocks\.(\d+)\.'),
                        blocks(rf'body\.0\.{_RESTORER}\.encoder_layers\.1\.0\.blocks\.(\d+)\.'),
                        blocks(rf'body\.0\.{_RESTORER}\.bottleneck\.blocks\.(\d+)\.')),
            block_type=block_type)
        if block_type == 'ifssm':
            a_logs = rf'body\.0\.{_RESTORER}\.encoder_layers\.0\.0\.blocks\.0\.1\.A_logs'
            key = next(k for k in state if re.fullmatch(a_logs, k))
            arch['d_state'] = state[key].shape[1]
    except (KeyError, StopIteration) as error:
        raise ValueError(f'authors\' state dict lacks a key needed to read its architecture: '
                         f'{error}') from error
    return arch


def convert_official_state_dict(state_dict, model=None):
    """Map an authors' state dict onto our ``RetinexMamba`` layout.

    Args:
        state_dict (dict): The loaded .pth object: a dict with ``params`` (or ``params_ema``),
            or the bare state dict; keys may carry ``module.``; ``Restorer`` or ``denoiser``.
        model (RetinexMamba, optional): The model to check against. Default: one built with
            the architecture read from the state dict (``official_arch``).

    Returns:
        dict: Our backbone's state dict (``model.load_state_dict(..., strict=True)`` takes it).

    Raises:
        ValueError: When the file does not fit, listing missing and unexpected keys and shape
            mismatches.
    """
    state = _network_state(state_dict)
    if state is None:
        raise ValueError('not an authors\' checkpoint: expected a dict with "params" holding '
                         '"body.<stage>..." keys (or such a state dict itself)')
    block_type = _block_type(state)
    if model is None:
        model = RetinexMamba(**official_arch(state))
    expected = {k: v.shape for k, v in model.state_dict().items()}
    converted, unexpected, mismatched = {}, [], {}
    for key, value in state.items():
        ours = _map_key(key, block_type)
        if ours is None or ours not in expected:
            unexpected.append(key)
        elif value.shape != expected[ours]:
            mismatched[ours] = (f'{key} -> {ours}: {tuple(value.shape)} vs ours '
                                f'{tuple(expected[ours])}')
        else:
            converted[ours] = value
    missing = sorted(set(expected) - set(converted) - set(mismatched))
    if missing or unexpected or mismatched:
        lines = ['the authors\' state dict does not fit RetinexMamba '
                 f'({len(converted)} of {len(expected)} keys matched)']
        for title, keys in (('missing (ours, no source)', missing),
                            ('unexpected (theirs, no place)', unexpected),
                            ('shape mismatch', list(mismatched.values()))):
            if keys:
                lines.append(f'{title} [{len(keys)}]: ' + ', '.join(keys[:20]) +
                             (' ...' if len(keys) > 20 else ''))
        raise ValueError('\n'.join(lines))
    return converted


def load_official_checkpoint(path, map_location='cpu'):
    """Read an authors' .pth (``torch.load(weights_only=True)``) and return our state dict."""
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if not is_official_checkpoint(checkpoint):
        raise ValueError(f'{path}: not an authors\' RetinexMamba checkpoint (expected a dict '
                         'with "params" holding "body.<stage>..." keys)')
    try:
        return convert_official_state_dict(checkpoint)
    except ValueError as error:
        raise ValueError(f'{path}: {error}') from error

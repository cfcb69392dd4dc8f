"""The authors' checkpoint layout and forward pass, written from the spec (section 2 and the
module tree of their code), independently of retinexmamba_mm.

``authors_shapes`` lists every key of their state dict with its shape; ``authors_forward`` runs
their network directly on such a state dict (float64, per-step scan), so a converted checkpoint
can be checked end to end: same weights, same output.
"""
import math

import torch
import torch.nn.functional as F


def ifssm_block_shapes(w, heads, state):
    """Keys of one block of their IFSSM: [IFA, SS2D, PreNorm(FFN)]."""
    hidden = int(w * 2.66)
    inner, rank = 2 * w, math.ceil(w / 16)
    ifa = {'conv1.weight': (w, w, 1, 1), 'conv1.bias': (w, ),
           'norm1.body.weight': (w, ), 'norm1.body.bias': (w, ),
           'attn.temperature': (heads, 1, 1),
           'attn.kv.weight': (2 * w, w, 1, 1), 'attn.kv.bias': (2 * w, ),
           'attn.kv_dwconv.weight': (2 * w, 1, 3, 3), 'attn.kv_dwconv.bias': (2 * w, ),
           'attn.q.weight': (w, w, 1, 1), 'attn.q.bias': (w, ),
           'attn.q_dwconv.weight': (w, w, 3, 3), 'attn.q_dwconv.bias': (w, ),
           'attn.project_out.weight': (w, w, 1, 1), 'attn.project_out.bias': (w, ),
           'norm2.body.weight': (w, ), 'norm2.body.bias': (w, ),
           'ffn.project_in.weight': (2 * hidden, w, 1, 1), 'ffn.project_in.bias': (2 * hidden, ),
           'ffn.dwconv.weight': (2 * hidden, 1, 3, 3), 'ffn.dwconv.bias': (2 * hidden, ),
           'ffn.project_out.weight': (w, hidden, 1, 1), 'ffn.project_out.bias': (w, )}
    ss2d = {'x_proj_weight': (4, rank + 2 * state, inner), 'dt_projs_weight': (4, inner, rank),
            'dt_projs_bias': (4, inner), 'A_logs': (4 * inner, state), 'Ds': (4 * inner, ),
            'in_proj.weight': (2 * inner, w), 'conv2d.weight': (inner, 1, 3, 3),
            'conv2d.bias': (inner, ), 'out_norm.weight': (inner, ), 'out_norm.bias': (inner, ),
            'out_proj.weight': (w, inner)}
    ffn = {'norm.weight': (w, ), 'norm.bias': (w, ), 'fn.net.0.weight': (4 * w, w, 1, 1),
           'fn.net.2.weight': (4 * w, 1, 3, 3), 'fn.net.4.weight': (w, 4 * w, 1, 1)}
    out = {}
    for index, part in enumerate((ifa, ss2d, ffn)):
        out.update({f'{index}.{k}': v for k, v in part.items()})
    return out


def igab_block_shapes(w, heads, state):
    """Keys of one block of Retinexformer's IGAB: [IG_MSA, PreNorm(FFN)]."""
    msa = {'to_q.weight': (w, w), 'to_k.weight': (w, w), 'to_v.weight': (w, w),
           'rescale': (heads, 1, 1), 'proj.weight': (w, w), 'proj.bias': (w, ),
           'pos_emb.0.weight': (w, 1, 3, 3), 'pos_emb.2.weight': (w, 1, 3, 3)}
    ffn = {'norm.weight': (w, ), 'norm.bias': (w, ), 'fn.net.0.weight': (4 * w, w, 1, 1),
           'fn.net.2.weight': (4 * w, 1, 3, 3), 'fn.net.4.weight': (w, 4 * w, 1, 1)}
    out = {f'0.{k}': v for k, v in msa.items()}
    out.update({f'1.{k}': v for k, v in ffn.items()})
    return out


def authors_shapes(n_feat=40, num_blocks=(1, 2, 2), d_state=16, stage=1, restorer='Restorer',
                   block='ifssm'):
    block_shapes = ifssm_block_shapes if block == 'ifssm' else igab_block_shapes
    c = n_feat
    shapes = {}

    def blocks(prefix, count, w, state):
        for b in range(count):
            for k, v in block_shapes(w, w // c, state).items():
                shapes[f'{prefix}.blocks.{b}.{k}'] = v

    for s in range(stage):
        e = f'body.{s}.estimator.'
        shapes.update({e + 'conv1.weight': (c, 4, 1, 1), e + 'conv1.bias': (c, ),
                       e + 'depth_conv.weight': (c, c // 4, 5, 5), e + 'depth_conv.bias': (c, ),
                       e + 'conv2.weight': (3, c, 1, 1), e + 'conv2.bias': (3, )})
        r = f'body.{s}.{restorer}.'
        shapes[r + 'embedding.weight'] = (c, 3, 3, 3)
        for i in range(2):                                  # encoder levels, width c * 2^i
            w = c * 2**i
            blocks(f'{r}encoder_layers.{i}.0', num_blocks[i], w, d_state * 2**i)
            shapes[f'{r}encoder_layers.{i}.1.weight'] = (2 * w, w, 4, 4)
            shapes[f'{r}encoder_layers.{i}.2.weight'] = (2 * w, w, 4, 4)
        blocks(f'{r}bottleneck', num_blocks[2], 4 * c, 4 * d_state)
        for j in range(2):                                  # decoders, deepest first
            level = 1 - j
            w = c * 2**level
            shapes[f'{r}decoder_layers.{j}.0.weight'] = (2 * w, w, 2, 2)
            shapes[f'{r}decoder_layers.{j}.0.bias'] = (w, )
            shapes[f'{r}decoder_layers.{j}.1.weight'] = (w, 2 * w, 1, 1)
            blocks(f'{r}decoder_layers.{j}.2', num_blocks[level], w, d_state * 2**(level + 1))
        shapes[r + 'mapping.weight'] = (3, c, 3, 3)
    return shapes


def random_authors_state(shapes, seed=0, dtype=torch.float32):
    """Random values with the right kind of scale (A_logs of S4D-real, positive norms ...)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        value = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.2
        if key.endswith('A_logs'):
            value = torch.log(torch.arange(1, shape[1] + 1, dtype=torch.float64)) + value
        elif key.endswith('dt_projs_bias'):
            value = value - 4.0
        elif key.endswith(('norm1.body.weight', 'norm2.body.weight', 'norm.weight',
                           'temperature', 'rescale', 'Ds')):
            value = value + 1.0
        state[key] = value.to(dtype)
    return state


# ----------------------------------------------------------------------------- their forward
def _conv(x, sd, key, groups=1, stride=1, padding=None):
    w = sd[key + '.weight']
    pad = w.shape[-1] // 2 if padding is None else padding
    return F.conv2d(x, w, sd.get(key + '.bias'), stride=stride, padding=pad, groups=groups)


def _norm_c(x, sd, key):
    mu = x.mean(1, keepdim=True)
    var = ((x - mu)**2).mean(1, keepdim=True)
    return ((x - mu) / torch.sqrt(var + 1e-5) * sd[key + '.weight'].view(1, -1, 1, 1)
            + sd[key + '.bias'].view(1, -1, 1, 1))


def _ifa(sd, p, x, illu, heads):
    c = x.shape[1]
    s = _norm_c(_conv(illu, sd, p + 'conv1'), sd, p + 'norm1.body')
    r = _norm_c(x, sd, p + 'norm1.body')
    k, v = _conv(_conv(r, sd, p + 'attn.kv'), sd, p + 'attn.kv_dwconv', groups=2 * c).chunk(2, 1)
    q = _conv(_conv(s, sd, p + 'attn.q'), sd, p + 'attn.q_dwconv')
    b, _, h, w = x.shape
    q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in (q, k, v))
    attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
            * sd[p + 'attn.temperature']).softmax(-1)
    r = r + _conv((attn @ v).reshape(b, c, h, w), sd, p + 'attn.project_out')
    hidden = sd[p + 'ffn.project_out.weight'].shape[1]
    g1, g2 = _conv(_conv(_norm_c(r, sd, p + 'norm2.body'), sd, p + 'ffn.project_in'), sd,
                   p + 'ffn.dwconv', groups=2 * hidden).chunk(2, 1)
    return r + _conv(F.gelu(g1) * g2, sd, p + 'ffn.project_out')


def _scan(u, delta, A, B, C, D):
    per = u.shape[1] // B.shape[1]
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[2]):
        h = (torch.exp(delta[..., t, None] * A) * h
             + (delta[..., t] * u[..., t])[..., None] * B[..., t].repeat_interleave(per, 1))
        ys.append((h * C[..., t].repeat_interleave(per, 1)).sum(-1))
    return torch.stack(ys, -1) + D[:, None] * u


def _ss2d(sd, p, x):
    """x (b, h, w, c) -> (b, h, w, c), their forward_corev0 path."""
    b, hh, ww, _ = x.shape
    n = hh * ww
    xi, z = (x @ sd[p + 'in_proj.weight'].t()).chunk(2, -1)
    d = xi.shape[-1]
    xi = F.silu(_conv(xi.permute(0, 3, 1, 2), sd, p + 'conv2d', groups=d))
    hw = torch.stack([xi.reshape(b, d, n), xi.transpose(2, 3).reshape(b, d, n)], 1)
    xs = torch.cat([hw, hw.flip(-1)], 1)
    dbl = torch.einsum('bkdl,kcd->bkcl', xs, sd[p + 'x_proj_weight'])
    rank, state = sd[p + 'dt_projs_weight'].shape[2], sd[p + 'A_logs'].shape[1]
    dts, bs, cs = torch.split(dbl, [rank, state, state], 2)
    dts = torch.einsum('bkrl,kdr->bkdl', dts, sd[p + 'dt_projs_weight'])
    delta = F.softplus(dts.reshape(b, -1, n) + sd[p + 'dt_projs_bias'].reshape(-1, 1))
    y = _scan(xs.reshape(b, -1, n), delta, -torch.exp(sd[p + 'A_logs']), bs, cs, sd[p + 'Ds'])
    y = y.view(b, 4, d, n)
    inv = y[:, 2:4].flip(-1)
    wh = y[:, 1].view(b, d, ww, hh).transpose(2, 3).reshape(b, d, n)
    invwh = inv[:, 1].view(b, d, ww, hh).transpose(2, 3).reshape(b, d, n)
    y = (y[:, 0] + inv[:, 0] + wh + invwh).transpose(1, 2).reshape(b, hh, ww, d)
    y = F.layer_norm(y, (d, ), sd[p + 'out_norm.weight'], sd[p + 'out_norm.bias']) * F.silu(z)
    return y @ sd[p + 'out_proj.weight'].t()


def _prenorm_ffn(sd, p, x):
    w = x.shape[-1]
    h = F.layer_norm(x, (w, ), sd[p + 'norm.weight'], sd[p + 'norm.bias']).permute(0, 3, 1, 2)
    h = F.gelu(_conv(h, sd, p + 'fn.net.0'))
    h = F.gelu(_conv(h, sd, p + 'fn.net.2', groups=4 * w))
    return _conv(h, sd, p + 'fn.net.4').permute(0, 2, 3, 1)


def _ifssm(sd, prefix, x, illu, heads):
    b = 0
    while f'{prefix}.blocks.{b}.0.conv1.weight' in sd:
        p = f'{prefix}.blocks.{b}.'
        y = _ifa(sd, p + '0.', x, illu, heads).permute(0, 2, 3, 1)
        h = _ss2d(sd, p + '1.', y) + x.permute(0, 2, 3, 1)
        h = _prenorm_ffn(sd, p + '2.', h) + h
        x = h.permute(0, 3, 1, 2)
        b += 1
    return x


def authors_forward(sd, img, n_feat, restorer='Restorer'):
    """Their RetinexMamba on their state dict (one stage per ``body.<s>``)."""
    s = 0
    while f'body.{s}.estimator.conv1.weight' in sd:
        e, r = f'body.{s}.estimator.', f'body.{s}.{restorer}.'
        fea = _conv(torch.cat([img, img.mean(1, keepdim=True)], 1), sd, e + 'conv1')
        illu = _conv(fea, sd, e + 'depth_conv', groups=4)
        lit = img * _conv(illu, sd, e + 'conv2') + img
        fea = _conv(lit, sd, r + 'embedding')
        skips = []
        for i in range(2):
            fea = _ifssm(sd, f'{r}encoder_layers.{i}.0', fea, illu, 2**i)
            skips.append((fea, illu))
            fea = _conv(fea, sd, f'{r}encoder_layers.{i}.1', stride=2, padding=1)
            illu = _conv(illu, sd, f'{r}encoder_layers.{i}.2', stride=2, padding=1)
        fea = _ifssm(sd, f'{r}bottleneck', fea, illu, 4)
        for j in range(2):
            skip, illu = skips[1 - j]
            up = F.conv_transpose2d(fea, sd[f'{r}decoder_layers.{j}.0.weight'],
                                    sd[f'{r}decoder_layers.{j}.0.bias'], stride=2)
            fea = _conv(torch.cat([up, skip], 1), sd, f'{r}decoder_layers.{j}.1')
            fea = _ifssm(sd, f'{r}decoder_layers.{j}.2', fea, illu, 2**(1 - j))
        img = _conv(fea, sd, r + 'mapping') + lit
        s += 1
    return img

"""Compile the scan kernels for sm_90 without a GPU; print registers and spills per launch.

Drives the real launcher (triton_scan) on ``meta`` tensors with every kernel replaced by a
recorder, then compiles each recorded launch with the specialisation Triton's JIT would apply
(ints equal to 1 become constants, multiples of 16 and tensors get the divisibility hint). Needs
only triton (it ships ptxas and cuobjdump), so register pressure can be checked before spending
device time:

    python tools/gpu/compile_report.py --shape 1,80,16,400,600
    python tools/gpu/compile_report.py --shape 8,160,64,64,64 --set bwd_bd=8 bwd_warps=8
"""
import argparse
import os
import re
import subprocess
import tempfile
from unittest import mock

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from retinexmamba_mm.ops.selective_scan import triton_kernels, triton_scan

KERNELS = ('_row_walk_kernel', '_column_walk_kernel', '_chunk_combine_kernel',
           '_bwd_summary_kernel', '_bwd_walk_kernel')
GLUON_KERNELS = ('bwd_line_walk_kernel', )
PTR_TYPES = {torch.float32: '*fp32', torch.bfloat16: '*bf16', torch.float16: '*fp16'}


class Recorder:
    """Stands in for a JITFunction: ``kernel[grid](*args, **kw)`` is recorded, not run."""

    def __init__(self, fn, calls):
        self.fn, self.calls = fn, calls

    def __getitem__(self, grid):
        return lambda *args, **kw: self.calls.append((self.fn, grid, args, kw))


def specialise(fn, args, kw):
    signature, constexprs, attrs = {}, {}, {}
    fixed = {p.name for p in fn.params if p.do_not_specialize}
    for i, name in enumerate(fn.arg_names):
        value = args[i] if i < len(args) else kw[name]
        if name in kw or isinstance(value, (bool, )):
            signature[name] = 'constexpr'
            constexprs[name] = value
        elif isinstance(value, torch.Tensor):
            signature[name] = PTR_TYPES[value.dtype]
            attrs[(i, )] = [['tt.divisibility', 16]]
        elif name in fixed:
            signature[name] = 'i32'
        elif value == 1:
            signature[name] = 'constexpr'
            constexprs[name] = 1
        else:
            signature[name] = 'i32'
            if value % 16 == 0:
                attrs[(i, )] = [['tt.divisibility', 16]]
    source = ASTSource
    if fn.is_gluon():
        from triton.experimental.gluon._runtime import GluonASTSource as source
    return source(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)


def resources(compiled):
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), 'backends', 'nvidia', 'bin',
                             'cuobjdump')
    with tempfile.NamedTemporaryFile(suffix='.cubin') as f:
        f.write(compiled.asm['cubin'])
        f.flush()
        out = subprocess.run([cuobjdump, '-res-usage', f.name], capture_output=True,
                             text=True).stdout
    return re.search(r'REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)', out).groups()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--shape', default='1,80,16,400,600', help='batch,D,N,H,W')
    ap.add_argument('--dtype', default='float32')
    ap.add_argument('--sms', type=int, default=132)
    ap.add_argument('--set', nargs='*', default=[], help='config overrides, e.g. bwd_bd=8')
    ap.add_argument('--dump', default='', help='folder for ttgir/ptx of every launch')
    args = ap.parse_args()
    batch, ch, state, height, width = map(int, args.shape.split(','))
    dtype = getattr(torch, args.dtype)
    sizes = {k: int(v) for k, v in (s.split('=') for s in args.set)}
    meta = dict(device='meta', dtype=dtype)
    inputs = [torch.empty(batch, ch, height, width, **meta),
              torch.empty(batch, 4, ch, height, width, **meta),
              torch.empty(4 * ch, state, device='meta'),
              torch.empty(batch, 4, state, height, width, **meta),
              torch.empty(batch, 4, state, height, width, **meta),
              torch.empty(4 * ch, device='meta'), torch.empty(4 * ch, device='meta')]
    for t in inputs:
        t.requires_grad_(True)
    calls = []
    patches = [mock.patch.object(triton_kernels, name,
                                 Recorder(getattr(triton_kernels, name), calls))
               for name in KERNELS]
    if triton_scan._has_gluon():   # triton 3.5+
        from retinexmamba_mm.ops.selective_scan import gluon_kernels
        patches += [mock.patch.object(gluon_kernels, name,
                                      Recorder(getattr(gluon_kernels, name), calls))
                    for name in GLUON_KERNELS]
    patches.append(mock.patch.object(triton_scan, '_n_sm', lambda device: args.sms))
    patches.append(mock.patch.object(triton_scan, '_check_device', lambda *t: None))
    for p in patches:
        p.start()
    with triton_scan._override(**sizes):
        y = triton_scan.cross_selective_scan(*inputs)
        y.sum().backward()
    for p in patches:
        p.stop()
    seen = set()
    for fn, grid, a, kw in calls:
        kw = dict(kw)
        warps = kw.pop('num_warps')
        src = specialise(fn, a, kw)
        key = (fn.__name__, str(sorted(src.constants.items())), warps)
        if key in seen:
            continue
        seen.add(key)
        compiled = triton.compile(src, target=GPUTarget('cuda', 90, 32),
                                  options={'num_warps': warps})
        regs, stack, shared, local = resources(compiled)
        consts = {k: v for k, v in kw.items()
                  if k in ('NB', 'TL', 'BD', 'COL', 'REV', 'NCB', 'EMIT_Y', 'WARPS')}
        print(f'{fn.__name__:22s} grid={grid[0]:7d} warps={warps} {consts} regs={regs} '
              f'stack={stack} shared={shared}')
        if args.dump:
            os.makedirs(args.dump, exist_ok=True)
            stem = os.path.join(args.dump, f'{fn.__name__}_{len(seen)}')
            for ext in ('ttgir', 'ptx'):
                with open(f'{stem}.{ext}', 'w') as f:
                    f.write(compiled.asm[ext])


if __name__ == '__main__':
    main()

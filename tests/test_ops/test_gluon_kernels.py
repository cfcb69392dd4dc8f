"""The Gluon backward kernel compiles for an H100 (sm_90) on any machine, with the layout it is
written for: no layout conversions (each step's reductions stay in a thread).

Gluon cannot run under Triton's interpreter, which the test session switches on without CUDA,
so the compilation runs in a fresh process without it. The kernel's numerics are checked on the
GPU machine (``test_triton_scan.py``, ``gpu`` marker) against a float64 per-step scan.
"""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip('triton', reason='triton is not installed')

COMPILE = r'''
import json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.experimental.gluon._runtime import GluonASTSource
from retinexmamba_mm.ops.selective_scan import gluon_kernels

warps, rev = json.loads(sys.argv[1])
kernel = gluon_kernels.bwd_line_walk_kernel
# as Triton's JIT specialises a launch of SS2D's pixel-major maps (a column walk): unit
# strides (channels or states of a pixel, lanes) become constants, pointers are 16-byte aligned
constexprs = dict(NB=4, TL=32 * warps, BD=4, REV=rev, HAS_D=True, HAS_BIAS=True, SOFTPLUS=True,
                  HAS_START=True, WARPS=warps, su_d=1, sd_d=1, sg_d=1, sb_n=1, s_lane=1)
signature = {name: 'constexpr' if name in constexprs else
             '*fp32' if name.endswith('_ptr') else 'i32' for name in kernel.arg_names}
aligned = {(i, ): [['tt.divisibility', 16]] for i, name in enumerate(kernel.arg_names)
           if name.endswith('_ptr')}
compiled = triton.compile(GluonASTSource(fn=kernel, signature=signature, constexprs=constexprs,
                                         attrs=aligned),
                          target=GPUTarget('cuda', 90, 32), options={'num_warps': warps})
print(compiled.asm['ttgir'].count('convert_layout'))
'''


@pytest.mark.parametrize('warps,rev', [(4, False), (1, True)])
def test_backward_kernel_compiles_without_layout_conversions(warps, rev):
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    done = subprocess.run([sys.executable, '-c', COMPILE, json.dumps([warps, rev])], env=env,
                          capture_output=True, text=True)
    if 'No module named \'triton.experimental.gluon\'' in done.stderr:
        pytest.skip('this triton has no Gluon')
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) == 0, 'layout conversions in the TTGIR'

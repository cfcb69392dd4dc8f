"""Import ``retinexmamba_mm.ops.selective_scan`` on a machine without the OpenMMLab stack.

The GPU machine has torch and triton but no mmengine/mmcv/mmagic. If the package's top-level
import fails there, register the parent packages as bare namespaces so that the ops (which need
only torch, and triton for the kernels) can still be imported and tested. Used by the scripts in
this folder only; a normal install imports the package as usual.
"""
import importlib
import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bootstrap():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    try:
        importlib.import_module('retinexmamba_mm')
        return 'package'
    except ImportError as error:
        for name in [n for n in sys.modules if n == 'retinexmamba_mm' or
                     n.startswith('retinexmamba_mm.')]:
            del sys.modules[name]
        for name, path in (('retinexmamba_mm', 'retinexmamba_mm'),
                           ('retinexmamba_mm.ops', 'retinexmamba_mm/ops')):
            shell = types.ModuleType(name)
            shell.__path__ = [os.path.join(ROOT, path)]
            sys.modules[name] = shell
        return f'ops only (package import failed: {error})'


if __name__ == '__main__':
    # python tools/gpu/ops_only.py -m pytest ...  runs pytest with the ops importable
    print('retinexmamba_mm import:', bootstrap(), flush=True)
    import pytest
    args = sys.argv[1:]
    if args[:2] == ['-m', 'pytest']:
        args = args[2:]
    sys.exit(pytest.main(args))

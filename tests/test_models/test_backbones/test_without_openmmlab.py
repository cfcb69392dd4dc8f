"""The network and the scan need torch alone: they import and run with mmengine, mmagic and
mmcv made unimportable (a fresh interpreter, so nothing is cached)."""
import subprocess
import sys
import textwrap

CODE = textwrap.dedent('''
    import sys
    for name in ('mmengine', 'mmagic', 'mmcv'):
        sys.modules[name] = None   # "not installed"
    import torch
    from retinexmamba_mm.models import RetinexMamba, convert_official_state_dict
    from retinexmamba_mm.ops import available_backends, cross_selective_scan, selective_scan
    model = RetinexMamba(n_feat=8, num_blocks=(1, 1, 1), d_state=4)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 9, 10)).shape == (1, 3, 9, 10)
    assert available_backends('cpu') in (['torch'], ['torch', 'cpu'])  # cpu: with a compiler
    print('ok')
''')


def test_network_runs_without_the_openmmlab_stack():
    result = subprocess.run([sys.executable, '-c', CODE], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith('ok')

"""tools/analysis/complexity.py: the published Retinexformer count, and the analytic scan count
against the formula written out here."""
import pytest
from tool_scripts import load_tool

pytest.importorskip('mmengine.analysis')
pytestmark = pytest.mark.usefixtures('single_thread')


def test_retinexformer_matches_its_paper(capsys):
    counts = load_tool('analysis/complexity.py').main(['--generator-options', 'block_type=igab'])
    assert counts['params'] == 1_605_701
    assert round(sum(counts['by_operator'].values()) / 2**30, 2) == 15.57   # their Table
    assert counts['scan_macs'] == 0
    assert 'FLOPs (2 x MACs)' in capsys.readouterr().out


def test_scan_macs_follow_the_formula():
    arch = dict(n_feat=8, num_blocks=(1, 1, 1), d_state=4)
    counts = load_tool('analysis/complexity.py').main(['--shape', '16', '24', '--generator-options',
                               *[f'{k}={v}' for k, v in arch.items()]])
    expected = 0
    for level, state in [(0, 4), (0, 8), (1, 8), (1, 16), (2, 16)]:   # enc/dec per level
        inner = 2 * 8 * 2**level
        pixels = 16 * 24 // 4**level
        expected += 3 * 4 * inner * state * pixels
    assert counts['scan_macs'] == expected
    assert counts['scan_exps'] == expected // 3

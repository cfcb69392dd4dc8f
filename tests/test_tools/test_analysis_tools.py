"""tools/analysis/benchmark.py and profile_model.py run end to end on the CPU at tiny sizes (the
numbers themselves come from the real machines; here only that the tools work and report)."""
import pytest
from tool_scripts import load_tool

from retinexmamba_mm.ops import available_backends

pytestmark = pytest.mark.usefixtures('single_thread')


def test_benchmark_table_has_every_row_and_ratio(capsys):
    rows = load_tool('analysis/benchmark.py').main(
        ['--sections', 'scan,infer,train', '--sizes', '16x24', '--n-feat', '8',
         '--scan-length', '32', '--train-batch', '1', '--train-size', '16', '--warmup', '0',
         '--repeats', '1', '--variants', 'channels_last'])
    sections = [row['section'] for row in rows]
    backends = len(available_backends('cpu'))  # cpu (where a C compiler is) and torch
    assert sections.count('scan') == 2 * (backends + 2)   # 2 shapes x (ours + 2 per-step loops)
    assert sections.count('infer') == 2 * backends and sections.count('train') == 2 * backends
    assert all(row['seconds'] > 0 for row in rows)
    loop = rows[backends]
    assert 'torch scan' in loop['note'] and 'x faster' in loop['note']
    assert rows[-1]['backend'] == 'torch+channels_last' and 'x vs ' in rows[-1]['note']
    assert 'device: cpu' in capsys.readouterr().out


def test_benchmark_refuses_graphs_on_cpu():
    with pytest.raises(SystemExit):
        load_tool('analysis/benchmark.py').parse_args(['--variants', 'graph'])


@pytest.mark.parametrize('train', [False, True])
def test_profile_prints_layers_and_operators(capsys, train):
    load_tool('analysis/profile_model.py').main(['--size', '16x24', '--top', '5']
                                    + (['--train'] if train else []))
    out = capsys.readouterr().out
    assert ('training step' if train else 'forward') in out
    for layer in ('SS2D', 'IFA', 'FeedForward', 'IlluminationEstimator'):
        assert layer in out
    assert 'operator' in out

"""tools/convert_official_ckpt.py writes a checkpoint that mmengine's loader puts into the
editor's ``generator``."""
import pytest
import torch
from tool_scripts import load_tool
from torch import nn

from retinexmamba_mm.models import RetinexMamba

from .authors_layout import authors_shapes, random_authors_state

pytestmark = pytest.mark.usefixtures('single_thread')


def test_converted_file_loads_into_the_generator(tmp_path, capsys):
    arch = dict(n_feat=8, num_blocks=(1, 1, 1), d_state=4)
    theirs = random_authors_state(authors_shapes(**arch))
    src, dst = tmp_path / 'theirs.pth', tmp_path / 'out' / 'ours.pth'
    torch.save({'params': {'module.' + k: v for k, v in theirs.items()}}, src)
    load_tool('convert_official_ckpt.py').main([str(src), str(dst)])
    assert "'n_feat': 8" in capsys.readouterr().out
    checkpoint = torch.load(dst, weights_only=True)
    assert set(checkpoint) == {'meta', 'state_dict'}
    assert all(k.startswith('generator.') for k in checkpoint['state_dict'])
    assert checkpoint['meta']['generator']['d_state'] == 4

    mmengine_runner = pytest.importorskip('mmengine.runner')
    editor = nn.Module()
    editor.generator = RetinexMamba(**arch)
    mmengine_runner.load_checkpoint(editor, str(dst), strict=True)
    assert torch.equal(editor.generator.stages[0].restorer.mapping.weight,
                       theirs['body.0.Restorer.mapping.weight'])


def test_refuses_other_files(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': {'generator.x': torch.zeros(1)}}, path)
    with pytest.raises(SystemExit, match='not an authors'):
        load_tool('convert_official_ckpt.py').main([str(path), str(tmp_path / 'o.pth')])

"""Authors' checkpoints: a state dict in their layout, built here from the spec
(``authors_layout``), converts onto our RetinexMamba, loads strictly with every key consumed
and every parameter filled, and gives the output of their forward pass."""
import math

import pytest
import torch

from retinexmamba_mm.models import (
    RetinexMamba,
    convert_official_state_dict,
    is_official_checkpoint,
    load_official_checkpoint,
)
from retinexmamba_mm.models.official import official_arch

from .authors_layout import authors_forward, authors_shapes, random_authors_state

pytestmark = pytest.mark.usefixtures('single_thread')

LOL = dict(n_feat=40, num_blocks=(1, 2, 2), d_state=16)


def test_spec_layout_has_the_published_size():
    shapes = authors_shapes(**LOL)
    assert sum(math.prod(s) for s in shapes.values()) == 4_589_001
    assert sum(math.prod(s) for s in authors_shapes(block='igab', **LOL).values()) == 1_605_701


def nan_model(**kwargs):
    model = RetinexMamba(**kwargs)
    with torch.no_grad():
        for t in model.state_dict().values():
            t.fill_(float('nan'))
    return model


@pytest.mark.parametrize('restorer', ['Restorer', 'denoiser'])
@pytest.mark.parametrize('wrap', ['params', 'module', 'params_ema', 'bare'])
def test_convert_load_strict_and_run(restorer, wrap):
    theirs = random_authors_state(authors_shapes(restorer=restorer, **LOL))
    if wrap == 'params':
        obj = {'params': theirs}
    elif wrap == 'module':
        obj = {'params': {'module.' + k: v for k, v in theirs.items()}}
    elif wrap == 'params_ema':
        obj = {'params_ema': theirs}
    else:
        obj = theirs
    assert is_official_checkpoint(obj)
    ours = convert_official_state_dict(obj)
    assert len(ours) == len(theirs)                                     # every key consumed
    assert sorted(id(v) for v in ours.values()) == sorted(id(v) for v in theirs.values())
    model = nan_model(**LOL)
    model.load_state_dict(ours, strict=True)
    assert not any(torch.isnan(t).any() for t in model.state_dict().values())  # all filled
    if wrap == 'params':  # the layouts only differ before conversion: one forward is enough
        with torch.no_grad():
            out = model.set_scan_backend('torch')(torch.rand(1, 3, 8, 12))
        assert out.shape == (1, 3, 8, 12) and torch.isfinite(out).all()


def test_converted_model_reproduces_their_forward():
    arch = dict(n_feat=8, num_blocks=(1, 1, 1), d_state=2)
    theirs = random_authors_state(authors_shapes(**arch), seed=1, dtype=torch.float64)
    model = RetinexMamba(**arch, scan_backend='torch').double()
    model.load_state_dict(convert_official_state_dict({'params': theirs}), strict=True)
    img = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(img), authors_forward(theirs, img, n_feat=8))


def test_architecture_is_read_from_the_file():
    shapes = authors_shapes(n_feat=16, num_blocks=(2, 1, 3), d_state=8, stage=2)
    arch = official_arch({'params': random_authors_state(shapes)})
    assert arch == dict(n_feat=16, stage=2, num_blocks=(2, 1, 3), block_type='ifssm',
                        d_state=8)


def test_retinexformer_checkpoint_converts_to_the_igab_variant():
    theirs = random_authors_state(authors_shapes(restorer='denoiser', block='igab', **LOL))
    ours = convert_official_state_dict({'params': theirs})
    model = RetinexMamba(block_type='igab', **LOL)
    model.load_state_dict(ours, strict=True)
    assert len(ours) == len(theirs)


def test_wrong_file_lists_missing_and_unexpected_keys():
    theirs = random_authors_state(authors_shapes(**LOL))
    dropped = 'body.0.Restorer.bottleneck.blocks.1.1.A_logs'
    del theirs[dropped]
    theirs['body.0.Restorer.extra_head.weight'] = torch.zeros(3)
    theirs['body.0.estimator.conv2.bias'] = torch.zeros(4)
    with pytest.raises(ValueError) as info:
        convert_official_state_dict({'params': theirs})
    message = str(info.value)
    assert 'missing' in message and 'stages.0.restorer.bottleneck.1.ss2d.A_logs' in message
    assert 'unexpected' in message and 'body.0.Restorer.extra_head.weight' in message
    assert 'shape mismatch' in message and 'body.0.estimator.conv2.bias' in message


def test_other_files_are_not_official():
    assert not is_official_checkpoint({'state_dict': {'generator.x': torch.zeros(1)}})
    assert not is_official_checkpoint({'params': {'conv.weight': torch.zeros(1)}})
    assert not is_official_checkpoint([1, 2])
    with pytest.raises(ValueError, match='not an authors'):
        convert_official_state_dict({'state_dict': {}})


def test_load_official_checkpoint(tmp_path):
    theirs = random_authors_state(authors_shapes(**LOL))
    path = tmp_path / 'RetinexMamba_LOL_v2_real.pth'
    torch.save({'params': theirs}, path)
    ours = load_official_checkpoint(str(path))
    assert torch.equal(ours['stages.0.estimator.proj_in.weight'],
                       theirs['body.0.estimator.conv1.weight'])
    torch.save({'state_dict': {}}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='other.pth'):
        load_official_checkpoint(str(tmp_path / 'other.pth'))

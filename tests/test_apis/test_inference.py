"""init_model / enhance on a tiny RetinexMamba: sizes, dtypes, checkpoints, tiles, ensemble."""
import numpy as np
import pytest
import torch
from PIL import Image

from retinexmamba_mm.apis import (
    default_config_path,
    enhance,
    illumination_to_image,
    inference,
    init_model,
)

TINY_CONFIG = """
default_scope = 'mmagic'
model = dict(
    type='LowLightEnhancer',
    generator=dict(type='RetinexMamba', n_feat={n_feat}, num_blocks=[1, 1, 1], d_state=4),
    pixel_loss=dict(type='L1Loss', loss_weight=1.0),
    test_cfg=dict(self_ensemble=False),
    data_preprocessor=dict(type='LowLightDataPreprocessor'))
"""
# Tiled vs whole on the tiny model (96x128, tiles of 48, overlap 16): the global parts of the
# network make them differ slightly; measured max 1 level, PSNR 67 dB between the two.
TILED_MAX_ABS = 4
TILED_MIN_PSNR = 55


def write_config(path, n_feat=8):
    path.write_text(TINY_CONFIG.format(n_feat=n_feat))
    return path


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A tiny config, a checkpoint of ours for it, and the model loaded from both."""
    root = tmp_path_factory.mktemp('tiny')
    config = write_config(root / 'tiny.py')
    torch.manual_seed(0)
    source = init_model(config)
    state = {'generator.' + k: v for k, v in source.generator.state_dict().items()}
    torch.save({'meta': {}, 'state_dict': state}, root / 'tiny.pth')
    return config, root / 'tiny.pth', init_model(config, root / 'tiny.pth')


def rgb(height, width, seed=0):
    image = np.random.default_rng(seed).random((height, width, 3)) * 90  # dark
    return image.astype(np.uint8)


def network_output(generator, image):
    """The expected output computed directly: RGB [0, 1] in, clamp, x255, round."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        out = generator(x)
    return (out[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64))**2)
    return 10 * np.log10(255**2 / mse) if mse else np.inf


def test_init_model_loads_the_checkpoint_strictly_in_eval_mode(tiny):
    config, checkpoint, model = tiny
    saved = torch.load(checkpoint, weights_only=True)['state_dict']
    assert not model.training
    for key, value in model.generator.state_dict().items():
        assert torch.equal(value, saved['generator.' + key]), key
    assert model.cfg.model.generator.n_feat == 8


def test_init_model_warns_about_random_weights(tiny, monkeypatch):
    warnings = []

    class Recorder:
        warning, info = warnings.append, staticmethod(lambda message: None)

    monkeypatch.setattr(inference, 'get_logger', Recorder)
    init_model(tiny[0])
    assert len(warnings) == 1 and 'RANDOM' in warnings[0]


def test_init_model_refuses_a_checkpoint_of_another_model(tiny, tmp_path):
    with pytest.raises(ValueError, match='does not fit'):
        init_model(write_config(tmp_path / 'wider.py', n_feat=12), tiny[1])
    with pytest.raises(ValueError, match='expected `model'):
        (tmp_path / 'empty.py').write_text('default_scope = "mmagic"\n')
        init_model(tmp_path / 'empty.py')


def test_default_config_is_the_lol_v1_model():
    assert default_config_path().name == 'retinexmamba_lol_v1.py'
    model = init_model()
    assert sum(p.numel() for p in model.generator.parameters()) == 4_589_001


@pytest.mark.parametrize('height, width', [(37, 53), (32, 32), (5, 9)])
def test_enhance_returns_uint8_rgb_of_the_input_size(tiny, height, width):
    model = tiny[2]
    image = rgb(height, width)
    output = enhance(model, image)
    assert output.dtype == np.uint8 and output.shape == (height, width, 3)
    np.testing.assert_array_equal(output, network_output(model.generator, image))


def test_enhance_reads_paths_with_exif_orientation(tiny, tmp_path):
    image = rgb(24, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(image).save(tmp_path / 'rotated.jpg', exif=exif, quality=100)
    output = enhance(tiny[2], tmp_path / 'rotated.jpg')
    assert output.shape == (40, 24, 3)


def test_enhance_refuses_other_arrays(tiny):
    with pytest.raises(ValueError, match='uint8 RGB'):
        enhance(tiny[2], np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match='uint8 RGB'):
        enhance(tiny[2], np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match='tile'):
        enhance(tiny[2], rgb(8, 8), tile='big')


def test_tiled_output_is_close_to_whole_image_output(tiny):
    model = tiny[2]
    image = rgb(96, 128, seed=3)
    whole, whole_illumination = enhance(model, image, tile=None, return_illumination=True)
    tiled, tiled_illumination = enhance(model, image, tile=48, overlap=16,
                                        return_illumination=True)
    assert tiled.shape == whole.shape
    assert np.abs(tiled.astype(int) - whole).max() <= TILED_MAX_ABS
    assert psnr(tiled, whole) >= TILED_MIN_PSNR
    # The illumination estimator is local (1x1 and 5x5 convs): tiles reproduce it exactly.
    np.testing.assert_allclose(tiled_illumination, whole_illumination, atol=1e-5)


def test_illumination_is_the_estimators_map(tiny):
    model = tiny[2]
    image = rgb(20, 28)
    _, illumination = enhance(model, image, return_illumination=True)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        _, expected = model.generator(x, return_illumination=True)
    assert illumination.dtype == np.float32 and illumination.shape == (20, 28, 3)
    np.testing.assert_allclose(illumination, expected[0].permute(1, 2, 0).numpy(), atol=1e-6)
    shown = illumination_to_image(illumination)
    assert shown.dtype == np.uint8 and shown.min() == 0 and shown.max() == 255


def test_self_ensemble_averages_the_eight_flips_and_rotations(tiny):
    model = tiny[2]
    image = rgb(20, 28, seed=5)
    expected = np.zeros(image.shape)
    for k in range(4):
        for flip in (False, True):
            variant = np.rot90(image, k)
            variant = variant[:, ::-1] if flip else variant
            x = torch.from_numpy(variant.copy()).permute(2, 0, 1)[None].float() / 255
            with torch.no_grad():
                out = model.generator(x)[0].permute(1, 2, 0).numpy()
            out = out[:, ::-1] if flip else out
            expected += np.rot90(out, -k) / 8
    expected = np.round(np.clip(expected, 0, 1) * 255)
    output = enhance(model, image, self_ensemble=True)
    assert np.abs(output - expected).max() <= 1
    assert model.test_cfg['self_ensemble'] is False  # the config's setting is left as it was


def test_bare_network_works_without_the_editor(tiny):
    generator = tiny[2].generator
    image = rgb(16, 24)
    np.testing.assert_array_equal(enhance(generator, image), network_output(generator, image))
    with pytest.raises(ValueError, match='self_ensemble'):
        enhance(generator, image, self_ensemble=True)


def test_bfloat16_autocast_stays_close_to_float32(tiny):
    image = rgb(24, 32)
    full = enhance(tiny[2], image)
    half = enhance(tiny[2], image, dtype=torch.bfloat16)
    assert half.dtype == np.uint8 and psnr(half, full) > 30
    with pytest.raises(ValueError, match='dtype'):
        enhance(tiny[2], image, dtype=torch.float16)

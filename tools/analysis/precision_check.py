"""How far bf16 autocast moves the test metrics from fp32, on the same weights.

    python tools/analysis/precision_check.py DATA_DIR [--checkpoint CKPT] [--device cuda]

DATA_DIR holds LOL-style pairs (input/ and target/). Both runs enhance every image through the
same API (uint8 outputs, whole images) and score PSNR on RGB in [0, 1] against the target.
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from retinexmamba_mm.apis.inference import enhance
from retinexmamba_mm.datasets import read_image_rgb
from retinexmamba_mm.models import RetinexMamba


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255)**2)
    return 10 * np.log10(1 / mse)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_dir')
    parser.add_argument('--checkpoint')
    parser.add_argument('--device', default='cuda')
    args = parser.parse_args()
    torch.manual_seed(0)
    model = RetinexMamba().eval().to(args.device)
    if args.checkpoint:
        from retinexmamba_mm.apis.checkpoint import generator_state_dict
        model.load_state_dict(generator_state_dict(args.checkpoint))
    rows = []
    for low in sorted(Path(args.data_dir, 'input').glob('*.png')):
        image, target = read_image_rgb(low), read_image_rgb(Path(args.data_dir, 'target', low.name))
        fp32 = enhance(model, image, tile=None)
        bf16 = enhance(model, image, tile=None, dtype=torch.bfloat16)
        rows.append((psnr(fp32, target), psnr(bf16, target),
                     np.abs(fp32.astype(int) - bf16.astype(int)).max()))
    fp32, bf16, worst = np.array(rows).T
    print(f'{len(rows)} images: PSNR fp32 {fp32.mean():.4f} dB, bf16 {bf16.mean():.4f} dB, '
          f'difference {bf16.mean() - fp32.mean():+.4f} dB (max per image '
          f'{np.abs(bf16 - fp32).max():.4f}); largest pixel difference {int(worst.max())}/255')


if __name__ == '__main__':
    main()

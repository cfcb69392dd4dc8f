"""Turn a folder of normal-light photos into LOL-style low/normal-light training pairs.

    python tools/synthesize_lowlight.py SRC_DIR OUT_DIR [--seed 0] [--gamma 1.2 2.2] ...

writes OUT_DIR/low/<name>.png, OUT_DIR/normal/<name>.png and OUT_DIR/synthesis.json (seed,
ranges, and every image's parameters). Train on the result with
``train_dataloader.dataset = dict(type='LOLDataset', data_root=OUT_DIR, ...)``. The model is
documented in retinexmamba_mm/datasets/synthesize.py: luma darkened by ``gain * Y ** gamma``
with colour kept, then Poisson-Gaussian sensor noise in linear light, 8-bit output.
"""
import argparse
import sys

from retinexmamba_mm.datasets.synthesize import DEFAULT_RANGES, synthesize_folder


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Make synthetic low-light pairs from normal-light images '
                    '(parameters drawn per image from the given ranges).')
    parser.add_argument('src', help='folder of normal-light images (not recursive)')
    parser.add_argument('out', help='output folder (gets low/, normal/, synthesis.json)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed; with the same seed and file names the output is identical')
    helps = dict(gamma='exponent on the luma, >= 1 (uniform)',
                 gain='factor after the exponent, in (0, 1] (uniform)',
                 photons_at_white='photo-electrons of a white pixel: shot noise (log-uniform)',
                 read_noise='std of Gaussian read noise in linear [0, 1] units (uniform)')
    for name, (low, high) in DEFAULT_RANGES.items():
        parser.add_argument(f'--{name.replace("_", "-")}', type=float, nargs=2,
                            metavar=('MIN', 'MAX'), default=None,
                            help=f'{helps[name]}; default {low} {high}')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ranges = {name: tuple(getattr(args, name)) for name in DEFAULT_RANGES
              if getattr(args, name) is not None}
    record = synthesize_folder(args.src, args.out, seed=args.seed, ranges=ranges)
    print(f'wrote {len(record["images"])} pairs to {args.out} '
          f'(parameters in {args.out}/synthesis.json)')
    return 0


if __name__ == '__main__':
    sys.exit(main())

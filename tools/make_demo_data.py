"""Create the embedded demo set (``make demo`` runs this first); skipped when already complete.

    python tools/make_demo_data.py [--root data/demo] [--force]

LOL-style pairs made from scikit-image's bundled sample photos (no download), described in
retinexmamba_mm/datasets/demo_data.py; read by configs/_base_/datasets/demo.py.
"""
import argparse
import sys

from retinexmamba_mm.datasets.demo_data import make_demo_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description='Create the demo low-light dataset.')
    parser.add_argument('--root', default='data/demo',
                        help='output folder, relative to the working directory')
    parser.add_argument('--force', action='store_true', help='rebuild even if complete')
    args = parser.parse_args(argv)
    if make_demo_dataset(args.root, force=args.force):
        print(f'demo data written to {args.root}')
    else:
        print(f'demo data already complete in {args.root} (use --force to rebuild)')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Convert the authors' RetinexMamba (or Retinexformer) .pth into a checkpoint of ours.

    python tools/convert_official_ckpt.py IN.pth OUT.pth

IN.pth: a BasicSR file with ``params`` (``params_ema`` when ``params`` is absent), optionally
``module.``-prefixed, ``Restorer`` or ``denoiser`` naming. OUT.pth: an mmengine-style checkpoint,
``{'meta': {...}, 'state_dict': {'generator.<our key>': tensor}}``, which ``load_from`` and
``tools/test.py`` take (``tools/test.py`` also takes IN.pth directly and converts it on the fly).
The architecture read from the file is printed: use a config whose ``model.generator`` matches.
Needs only torch (no mmengine).
"""
import argparse
import os
import os.path as osp

import torch

from retinexmamba_mm.models.official import (
    convert_official_state_dict,
    is_official_checkpoint,
    official_arch,
)
from retinexmamba_mm.version import __version__


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help="the authors' .pth")
    parser.add_argument('dst', help='where to write our checkpoint')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.src):
        raise SystemExit(f'no such file: {args.src}')
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    if not is_official_checkpoint(checkpoint):
        raise SystemExit(f'{args.src}: not an authors\' checkpoint (expected a dict with '
                         '"params" holding "body.<stage>..." keys)')
    try:
        arch = official_arch(checkpoint)
        state = convert_official_state_dict(checkpoint)
    except ValueError as error:
        raise SystemExit(f'{args.src}: {error}') from error
    meta = dict(converted_from=osp.abspath(args.src), generator=dict(type='RetinexMamba', **arch),
                retinexmamba_mm_version=__version__)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save({'meta': meta, 'state_dict': {'generator.' + k: v for k, v in state.items()}},
               args.dst)
    print(f'{args.src}: {len(state)} tensors, {sum(v.numel() for v in state.values()):,} '
          f'parameters -> {args.dst}')
    print(f'architecture: {meta["generator"]}')


if __name__ == '__main__':
    main()

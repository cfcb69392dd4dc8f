"""Enhance your own low-light photos with a trained model (no target image needed).

    python tools/enhance.py INPUT... --checkpoint CKPT --out DIR [--config CFG] [--recursive]
        [--ext png|same] [--overwrite] [--illumination] [--side-by-side]
        [--tile auto|N|0] [--overlap N] [--self-ensemble] [--device cpu|cuda|cuda:N] [--bf16]
        [--cuda-graph] [--scan-backend auto|torch|cpu|mamba_ssm|triton]

INPUT: image files, folders (their images; with --recursive also those of subfolders) and globs
('photos/*.jpg'). CKPT: our checkpoint or the authors' .pth. CFG: the model config, by default
configs/retinexmamba_lol_v1.py. Writes under DIR, keeping the path relative to a given folder:

    <name>.png                 the enhanced image (--ext same: the input's format)
    <name>_illumination.png    the estimated illumination map, stretched to 0..255 (--illumination)
    <name>_side_by_side.png    input | illumination (with --illumination) | output (--side-by-side)

Outputs are 8-bit RGB whatever the input's depth (16-bit inputs keep their high byte when read);
JPEG and WebP outputs are written at quality 95 (JPEG with 4:4:4 chroma). Pixels are not
colour-converted: an RGB input's ICC profile is copied to its outputs unchanged. EXIF orientation
is applied to the pixels, so outputs are upright and carry no EXIF.

Large images are enhanced in overlapping tiles sized to the free memory (--tile auto); --tile N
forces N-pixel tiles, --tile 0 the whole image.

An input whose outputs all exist is skipped unless --overwrite, so a stopped run continues where
it stopped; outputs are written to a temporary file and renamed, so a stopped run leaves no
half-written image. Inputs are never overwritten. Exit status: 0 when every input was enhanced or
skipped, 1 when any failed (the summary says which and why), 2 for bad usage.
"""
import argparse
import glob
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

import retinexmamba_mm  # noqa: F401  (compat + registration before any config is parsed)
from retinexmamba_mm.apis import DEFAULT_OVERLAP, enhance, illumination_to_image, init_model
from retinexmamba_mm.apis.tiling import check_tile
from retinexmamba_mm.datasets import ImageReadError, read_image_rgb
from retinexmamba_mm.datasets.image_io import is_image_file
from retinexmamba_mm.ops.selective_scan import BACKENDS as SCAN_BACKENDS
from retinexmamba_mm.utils import keep_freed_memory

JPEG_QUALITY = 95
SEPARATOR_WIDTH = 8  # white columns between the panels of a side-by-side image
_RGB_MODES = {'RGB', 'RGBA', 'RGBX', 'P'}  # an ICC profile of these describes RGB pixels


@dataclass
class Job:
    source: Path
    outputs: Dict[str, Path] = field(default_factory=dict)  # kind -> path


@dataclass
class Summary:
    done: List[Path] = field(default_factory=list)
    skipped: List[Path] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)  # (input, reason)
    not_images: int = 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Enhance low-light images with a trained RetinexMamba model',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', nargs='+', metavar='INPUT', help='image files, folders, globs')
    parser.add_argument('--checkpoint', required=True,
                        help='our checkpoint or the authors\' .pth')
    parser.add_argument('--config', help='model config (default: configs/retinexmamba_lol_v1.py)')
    parser.add_argument('--out', required=True, type=Path, help='output folder')
    parser.add_argument('--recursive', action='store_true',
                        help='also read the subfolders of folder inputs (and ** in globs)')
    parser.add_argument('--ext', choices=['png', 'same'], default='png',
                        help='output format: png (default) or the input\'s own')
    parser.add_argument('--overwrite', action='store_true',
                        help='redo inputs whose outputs exist (default: skip them)')
    parser.add_argument('--illumination', action='store_true',
                        help='also write the illumination map')
    parser.add_argument('--side-by-side', action='store_true',
                        help='also write input | illumination (with --illumination) | '
                        'output side by side')
    parser.add_argument('--tile', type=_tile_arg, default='auto',
                        help='auto (default: from free memory), N (tiles of N pixels, a '
                        'multiple of 4) or 0 (whole image)')
    parser.add_argument('--overlap', type=int, default=DEFAULT_OVERLAP,
                        help=f'overlap of neighbouring tiles in pixels (default {DEFAULT_OVERLAP})')
    parser.add_argument('--self-ensemble', action='store_true',
                        help='average the 8 flip/rotation variants (8x slower)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu, cuda or cuda:N (default: cuda when available)')
    parser.add_argument('--bf16', action='store_true', help='bfloat16 autocast (for CUDA)')
    parser.add_argument('--cuda-graph', action='store_true',
                        help='replay the forward as a CUDA graph per image/tile size (CUDA; '
                             'faster for many images of one size)')
    parser.add_argument('--scan-backend', default='auto',
                        choices=['auto', *SCAN_BACKENDS],
                        help='selective-scan implementation (default auto, logged)')
    args = parser.parse_args(argv)
    if isinstance(args.tile, int):
        try:
            check_tile(args.tile, args.overlap)
        except ValueError as error:
            parser.error(str(error))
    if args.cuda_graph and not args.device.startswith('cuda'):
        parser.error(f'--cuda-graph needs a CUDA device, got --device {args.device}')
    return parser, args


def _tile_arg(value: str):
    if value == 'auto':
        return 'auto'
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected auto, 0 or a tile size, got {value!r}') from None
    return None if size == 0 else size


def collect_inputs(inputs: List[str], recursive: bool, out_dir: Path,
                   summary: Summary) -> List[Tuple[Path, Path]]:
    """``(file, output name relative to --out)`` for every input, in a stable order.

    Folders give their image files (by extension), keeping sub-paths; when ``out_dir`` lies
    inside a folder, the files under it are left out so earlier outputs are not taken for
    inputs. Inputs that match nothing are recorded as failures.
    """
    out_dir = out_dir.resolve()
    found, seen = [], set()

    def add(path: Path, name: Path):
        if path.resolve() not in seen:
            seen.add(path.resolve())
            found.append((path, name))

    for pattern in inputs:
        paths = [Path(p) for p in sorted(glob.glob(pattern, recursive=recursive))] \
            if glob.has_magic(pattern) else [Path(pattern)]
        if not any(p.exists() for p in paths):
            summary.failed.append((pattern, 'no such file or folder'))
            continue
        for path in paths:
            if path.is_dir():
                out_inside = out_dir != path.resolve() and path.resolve() in out_dir.parents
                for file in sorted(path.rglob('*') if recursive else path.iterdir()):
                    if not file.is_file() or out_inside and out_dir in file.resolve().parents:
                        continue
                    if is_image_file(file.name):
                        add(file, file.relative_to(path))
                    else:
                        summary.not_images += 1
            elif path.is_file():
                add(path, Path(path.name))
    return found


def plan_jobs(inputs: List[Tuple[Path, Path]], args) -> List[Job]:
    """The output paths of every input; refuses (ValueError) outputs that would overwrite an
    input or that two inputs would share."""
    input_paths = {path.resolve() for path, _ in inputs}
    jobs, claimed = [], {}
    for path, name in inputs:
        suffix = path.suffix.lower() if args.ext == 'same' else '.png'
        base = args.out / name.parent / name.stem
        job = Job(path, {'enhanced': base.with_name(base.name + suffix)})
        if args.illumination:
            job.outputs['illumination'] = base.with_name(base.name + '_illumination.png')
        if args.side_by_side:
            job.outputs['side_by_side'] = base.with_name(base.name + '_side_by_side' + suffix)
        for output in job.outputs.values():
            resolved = output.resolve()
            if resolved in input_paths:
                raise ValueError(f'{output} would overwrite the input {resolved}; choose another '
                                 '--out')
            if resolved in claimed:
                raise ValueError(f'{claimed[resolved]} and {path} would both write {output}; '
                                 'rename one, or use --ext same')
            claimed[resolved] = path
        jobs.append(job)
    return jobs


def run_job(job: Job, model, args, tile_bar) -> None:
    image = read_image_rgb(job.source)
    result = enhance(model, image, tile=args.tile, overlap=args.overlap,
                     self_ensemble=args.self_ensemble,
                     dtype=torch.bfloat16 if args.bf16 else None,
                     return_illumination=args.illumination, progress=tile_bar,
                     cuda_graph=args.cuda_graph)
    output, illumination = result if args.illumination else (result, None)
    profile = _rgb_icc_profile(job.source)
    save_image(output, job.outputs['enhanced'], profile)
    if illumination is not None:
        illumination = illumination_to_image(illumination)
        save_image(illumination, job.outputs['illumination'], None)
    if args.side_by_side:
        panels = [image]
        panels += [illumination] if illumination is not None else []
        save_image(side_by_side(panels + [output]), job.outputs['side_by_side'], profile)


def side_by_side(panels: List[np.ndarray]) -> np.ndarray:
    """Panels of one height, left to right, separated by white columns."""
    gap = np.full((panels[0].shape[0], SEPARATOR_WIDTH, 3), 255, dtype=np.uint8)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    return np.concatenate(row, axis=1)


def save_image(array: np.ndarray, path: Path, icc_profile: Optional[bytes]) -> None:
    """Write through a temporary file and rename, so an interrupted write leaves nothing that
    looks finished."""
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f'{path}: PIL cannot write {path.suffix!r} files; use --ext png')
    options = {}
    if image_format in ('JPEG', 'WEBP'):
        options['quality'] = JPEG_QUALITY
    if image_format == 'JPEG':
        options['subsampling'] = 0
    if icc_profile and image_format in ('PNG', 'JPEG', 'WEBP', 'TIFF'):
        options['icc_profile'] = icc_profile
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        Image.fromarray(array).save(temporary, format=image_format, **options)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _rgb_icc_profile(path: Path) -> Optional[bytes]:
    """The input's ICC profile when it describes RGB pixels (a grayscale or CMYK profile does
    not fit the RGB output). Reads the header only."""
    with Image.open(path) as image:
        return image.info.get('icc_profile') if image.mode in _RGB_MODES else None


class TileBar:
    """A second progress bar for the tiles of one large image, opened at its first tile."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int):
        if self.bar is None:
            self.bar = tqdm(total=total, desc='  tiles', unit='tile', leave=False, position=1)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def report(summary: Summary, out_dir: Path) -> None:
    print(f'\n{len(summary.done)} enhanced, {len(summary.skipped)} skipped (outputs exist; '
          f'--overwrite redoes them), {len(summary.failed)} failed; outputs in {out_dir}')
    if summary.not_images:
        print(f'{summary.not_images} file(s) in the input folders have no image extension and '
              'were not read')
    for source, reason in summary.failed:
        print(f'  FAILED {source}: {reason}')


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    if args.device == 'cpu':
        keep_freed_memory()
    summary = Summary()
    inputs = collect_inputs(args.inputs, args.recursive, args.out, summary)
    try:
        jobs = plan_jobs(inputs, args)
    except ValueError as error:
        parser.error(str(error))
    if not jobs:
        report(summary, args.out)
        print('no images found in the inputs')
        return 1
    try:
        model = init_model(args.config, args.checkpoint, args.device, args.scan_backend)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        parser.error(f'cannot load the model: {error}')
    tile_bar = TileBar()
    for job in tqdm(jobs, desc='enhance', unit='image'):
        if not args.overwrite and all(path.exists() for path in job.outputs.values()):
            summary.skipped.append(job.source)
            continue
        try:
            run_job(job, model, args, tile_bar)
            summary.done.append(job.source)
        except (ImageReadError, OSError, ValueError, RuntimeError, MemoryError) as error:
            summary.failed.append((str(job.source), f'{type(error).__name__}: {error}'))
        finally:
            tile_bar.close()
    report(summary, args.out)
    return 0 if not summary.failed else 1


if __name__ == '__main__':
    sys.exit(main())

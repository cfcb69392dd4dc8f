"""Finding and pairing low/normal-light image folders, with errors that say what is wrong.

Plain Python (no MMagic), so the dataset, the tools and the tests share one definition of the
layouts we understand:

    <root>/<split>/<low>/<name>.png   and   <root>/<split>/<normal>/<name>.png

where ``<split>`` is ``Train``/``Test`` (authors' copies, LOL-v2 releases) or ``our485``/``eval15``
(the original LOL-v1 release), and ``<low>/<normal>`` is ``input/target`` (authors' LOL-v1),
``Low/Normal`` (LOL-v2) or ``low/high`` (original LOL-v1); folder names match case-insensitively.
Files pair by identical name, or, failing that, by the name without a leading ``low`` /
``normal`` / ``high`` (the original LOL-v2 release names pairs ``low00690.png`` /
``normal00690.png``). Pairs come in natural order (``2.png`` before ``10.png``).
"""
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from .image_io import IMG_EXTENSIONS, is_image_file

SPLIT_FOLDER_NAMES = {'train': ('Train', 'our485'), 'test': ('Test', 'eval15')}
PAIR_FOLDER_NAMES = (('input', 'target'), ('Low', 'Normal'), ('low', 'high'))
LOW_NAME_PREFIXES = ('low',)
NORMAL_NAME_PREFIXES = ('normal', 'high')

EXPECTED_LAYOUT = """expected one of these layouts (folder names are case-insensitive):
  LOL-v1 (authors' copy)   <data_root>/{Train,Test}/{input,target}/<name>.png
  LOL-v1 (original)        <data_root>/{our485,eval15}/{low,high}/<name>.png
  LOL-v2 real / synthetic  <data_root>/{Train,Test}/{Low,Normal}/[low|normal]<name>.png
  your own pairs           <data_root>/<low>/, <data_root>/<normal>/ named in data_prefix
With split=None, data_root is the folder that holds the two image folders."""

_MAX_LISTED = 10


def natural_sort_key(text: str) -> tuple:
    """Sort key that orders digit runs by value: ``'2' < '10'``, ``'img9' < 'img10'``."""
    parts = re.split(r'(\d+)', text)
    # re.split with a capturing group alternates text, digits, text, ...: types never mix.
    return tuple(int(part) if i % 2 else part.lower() for i, part in enumerate(parts)), text


def _listing(names: Sequence[str]) -> str:
    shown = ', '.join(sorted(names, key=natural_sort_key)[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f', ... and {more} more' if more > 0 else '')


def _subfolders(folder: str) -> Dict[str, str]:
    """Lower-cased name -> real name of the sub-folders of ``folder``."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f'folder {folder!r} does not exist (absolute: {os.path.abspath(folder)}; '
            f'relative paths start at the working directory {os.getcwd()}).\n{EXPECTED_LAYOUT}')
    found: Dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        if os.path.isdir(os.path.join(folder, name)):
            if name.lower() in found:
                raise ValueError(f'{folder!r} holds both {found[name.lower()]!r} and {name!r}; '
                                 'folder names are matched case-insensitively, keep only one')
            found[name.lower()] = name
    return found


def find_split_folder(root: str, split: str) -> str:
    """Return the path of the ``split`` ('train' or 'test') folder under ``root``."""
    if split not in SPLIT_FOLDER_NAMES:
        raise ValueError(f'split must be one of {sorted(SPLIT_FOLDER_NAMES)} or None, '
                         f'got {split!r}')
    subfolders = _subfolders(root)
    for candidate in SPLIT_FOLDER_NAMES[split]:
        if candidate.lower() in subfolders:
            return os.path.join(root, subfolders[candidate.lower()])
    raise FileNotFoundError(
        f'no {split} folder ({" or ".join(SPLIT_FOLDER_NAMES[split])}) in {root!r}; it holds '
        f'[{_listing(list(subfolders.values()))}]. If {root!r} is itself a split folder, '
        f'pass split=None.\n{EXPECTED_LAYOUT}')


def find_pair_folders(folder: str) -> Tuple[str, str]:
    """Return the paths of the low-light and normal-light folders inside ``folder``."""
    subfolders = _subfolders(folder)
    for low, normal in PAIR_FOLDER_NAMES:
        if low.lower() in subfolders and normal.lower() in subfolders:
            return (os.path.join(folder, subfolders[low.lower()]),
                    os.path.join(folder, subfolders[normal.lower()]))
    raise FileNotFoundError(
        f'no pair of low/normal-light folders in {folder!r}; it holds '
        f'[{_listing(list(subfolders.values()))}]. Name your folders in '
        f"data_prefix=dict(img='<low>', gt='<normal>') if they differ.\n{EXPECTED_LAYOUT}")


def list_images(folder: str) -> List[str]:
    """Image file names in ``folder`` (not recursive); raises when missing or empty."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f'image folder {folder!r} does not exist (absolute: {os.path.abspath(folder)}).\n'
            f'{EXPECTED_LAYOUT}')
    names = [name for name in os.listdir(folder)
             if is_image_file(name) and os.path.isfile(os.path.join(folder, name))]
    if not names:
        raise ValueError(f'image folder {folder!r} is empty: no files ending in '
                         f'{", ".join(IMG_EXTENSIONS)} (case-insensitive)')
    return names


def _strip_prefix(stem: str, prefixes: Sequence[str]) -> str:
    for prefix in prefixes:
        match = re.match(rf'{prefix}[_\-]?(?=.)', stem, flags=re.IGNORECASE)
        if match:
            return stem[match.end():]
    return stem


def _index_by_key(names: Sequence[str], prefixes: Sequence[str]) -> Optional[Dict[str, str]]:
    """Pairing key -> file name; None when two files share a key (the strategy cannot work)."""
    index: Dict[str, str] = {}
    for name in names:
        key = _strip_prefix(os.path.splitext(name)[0], prefixes)
        if key in index:
            return None
        index[key] = name
    return index


def pair_images(low_dir: str, normal_dir: str) -> List[Tuple[str, str, str]]:
    """Pair the images of two folders; return ``(key, low_name, normal_name)`` in natural order.

    Raises:
        ValueError: a file has no partner (both directions are listed), or two files of one
            folder differ only by extension.
    """
    low_names, normal_names = list_images(low_dir), list_images(normal_dir)
    strategies = (((), ()), (LOW_NAME_PREFIXES, NORMAL_NAME_PREFIXES))
    best = None
    for low_prefixes, normal_prefixes in strategies:
        low_index = _index_by_key(low_names, low_prefixes)
        normal_index = _index_by_key(normal_names, normal_prefixes)
        if low_index is None or normal_index is None:
            continue
        common = low_index.keys() & normal_index.keys()
        if len(common) == len(low_index) == len(normal_index):
            return [(key, low_index[key], normal_index[key])
                    for key in sorted(common, key=natural_sort_key)]
        if best is None or len(common) > len(best[2]):
            best = (low_index, normal_index, common)
    if best is None:
        raise ValueError(f'{low_dir!r} or {normal_dir!r} holds two files with the same name '
                         'but different extensions; keep one of them')
    low_index, normal_index, common = best
    lonely_low = [low_index[k] for k in low_index.keys() - common]
    lonely_normal = [normal_index[k] for k in normal_index.keys() - common]
    lines = [f'unpaired images ({len(common)} pairs found):']
    if lonely_low:
        lines.append(f'  {len(lonely_low)} low-light file(s) in {low_dir!r} have no partner in '
                     f'{normal_dir!r}: {_listing(lonely_low)}')
    if lonely_normal:
        lines.append(f'  {len(lonely_normal)} normal-light file(s) in {normal_dir!r} have no '
                     f'partner in {low_dir!r}: {_listing(lonely_normal)}')
    lines.append('Pairs share a file name (or differ only by a leading low/normal/high).')
    raise ValueError('\n'.join(lines))

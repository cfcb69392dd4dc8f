"""Paired low/normal-light dataset: LOL-v1, LOL-v2 (real, synthetic) and your own folders."""
import os
from typing import Callable, List, Optional, Sequence, Union

from mmagic.datasets import BasicImageDataset
from mmagic.registry import DATASETS

from .image_io import ImageReadError, check_image_file
from .paired_folders import EXPECTED_LAYOUT, find_pair_folders, find_split_folder, pair_images


@DATASETS.register_module()
class LOLDataset(BasicImageDataset):
    """Pairs of low-light inputs and normal-light targets, checked when the dataset is built.

    Each item is ``dict(key=<name>, img_path=<low-light file>, gt_path=<normal-light file>)``;
    the pipeline's loading transform turns the paths into ``img`` and ``gt`` arrays.

    Layouts understood without renaming anything (see ``paired_folders.EXPECTED_LAYOUT``): the
    authors' copies (``Train/input``, ``Test/target``, ``Low``/``Normal``), the original LOL-v1
    release (``our485``/``eval15`` with ``low``/``high``) and the original LOL-v2 naming
    (``low00690.png`` / ``normal00690.png``, paired as key ``00690``). Pairs are in natural
    order of their key.

    Everything that would otherwise fail mid-training or end as PSNR = nan is checked here and
    raised with the file named: missing folder (with the expected layout), empty folder, files
    without a partner (listed both ways), unreadable or truncated images, and pairs whose sizes
    differ. With ``check_images=True`` every file's header is read and every PNG chunk's CRC
    is checked without decoding pixels (about 0.3 ms a file, 0.1 s for LOL-v1's test set; see
    ``image_io.check_image_file``).

    Pixel formats: images are read by ``image_io.read_image_rgb`` (use the
    ``LoadRGBImageFromFile`` transform): grayscale, palette, RGBA and 16-bit files are converted
    to 8-bit RGB, the same way for input and target (gray repeated to 3 channels, alpha dropped,
    16-bit reduced to its high byte); floating-point images are refused.

    Args:
        data_root (str): Dataset root, relative to the working directory or absolute, e.g.
            ``'data/LOLv1'``. With ``split`` set it holds the split folders; with
            ``split=None`` it holds the two image folders.
        split (str, optional): ``'train'`` (``Train``/``our485``) or ``'test'``
            (``Test``/``eval15``), matched case-insensitively. Defaults to None.
        data_prefix (dict, optional): ``dict(img=<low-light folder>, gt=<normal-light folder>)``
            relative to the split folder (or absolute), for layouts we do not detect.
            Defaults to None (detect ``input/target``, ``Low/Normal``, ``low/high``).
        pipeline (list): Transforms applied to each item. Defaults to ().
        test_mode (bool): Whether the dataset is used for testing. Defaults to False.
        check_images (bool): Verify every image and pair size when building. Turn it off only
            for datasets too large to scan. Defaults to True.
        **kwargs: Passed to mmengine's ``BaseDataset`` (``metainfo``, ``indices``,
            ``serialize_data``, ``lazy_init``, ``max_refetch``).
    """

    METAINFO = dict(dataset_type='low_light_paired', task_name='low_light_enhancement')

    def __init__(self,
                 data_root: str,
                 split: Optional[str] = None,
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 check_images: bool = True,
                 **kwargs):
        if not data_root:
            raise ValueError(f'LOLDataset needs a data_root.\n{EXPECTED_LAYOUT}')
        self.split = split
        self.check_images = check_images
        folder = find_split_folder(data_root, split) if split else data_root
        if data_prefix is None:
            low_dir, normal_dir = find_pair_folders(folder)
        else:
            if set(data_prefix) != {'img', 'gt'}:
                raise ValueError("data_prefix must be dict(img='<low-light folder>', "
                                 f"gt='<normal-light folder>'), got {data_prefix!r}")
            low_dir, normal_dir = (os.path.join(folder, data_prefix[k]) for k in ('img', 'gt'))
        def relative(path):  # BaseDataset joins data_root back onto relative prefixes
            return path if os.path.isabs(path) else os.path.relpath(path, data_root)

        super().__init__(
            data_root=data_root,
            data_prefix=dict(img=relative(low_dir), gt=relative(normal_dir)),
            filename_tmpl=dict(img='{}', gt='{}'),
            pipeline=list(pipeline),
            test_mode=test_mode,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        low_dir, normal_dir = self.data_prefix['img'], self.data_prefix['gt']
        data_list = [dict(key=key,
                          img_path=os.path.join(low_dir, low_name),
                          gt_path=os.path.join(normal_dir, normal_name))
                     for key, low_name, normal_name in pair_images(low_dir, normal_dir)]
        if self.check_images:
            self._check_pairs(data_list)
        return data_list

    @staticmethod
    def _check_pairs(data_list: List[dict]) -> None:
        """Read every header; report every unreadable file and size mismatch at once."""
        unreadable, mismatched = [], []
        for item in data_list:
            sizes = []
            for key in ('img_path', 'gt_path'):
                try:
                    sizes.append(check_image_file(item[key]))
                except ImageReadError as error:
                    unreadable.append(str(error))
            if len(sizes) == 2 and sizes[0] != sizes[1]:
                (h_low, w_low), (h_gt, w_gt) = sizes
                mismatched.append(f'{item["img_path"]} is {w_low}x{h_low} but '
                                  f'{item["gt_path"]} is {w_gt}x{h_gt} (width x height)')
        problems = []
        if unreadable:
            problems.append(f'{len(unreadable)} unreadable image(s):\n  '
                            + '\n  '.join(unreadable[:10]))
        if mismatched:
            problems.append(f'{len(mismatched)} pair(s) whose sizes differ:\n  '
                            + '\n  '.join(mismatched[:10]))
        if problems:
            more = len(unreadable) > 10 or len(mismatched) > 10
            raise ValueError('\n'.join(problems) + ('\n  ...' if more else ''))

"""The MMagic editor that trains and tests a low-light enhancement network.

MMagic's ``BaseEditModel`` already does the loss and the predict path (de-normalise, unpad, clamp);
this subclass adds what low-light enhancement needs on top:

* the illumination map the network estimates, kept beside the prediction (``pred_illumination``) so
  the visualisation hook draws input | illumination | output | target side by side;
* the optional x8 self-ensemble of the authors' test script (``test_cfg=dict(self_ensemble=True)``).

Sizes that are not multiples of 4 need nothing here: the backbone pads and crops back itself.
Batch mixup lives in the data preprocessor (``LowLightDataPreprocessor(batch_augments=...)``).
"""
from typing import List, Optional

import torch
from mmagic.models import BaseEditModel
from mmagic.registry import MODELS
from mmagic.structures import DataSample


def _geometric_variant(x: torch.Tensor, index: int) -> torch.Tensor:
    """One of the 8 flip/rot90 variants of a (B, C, H, W) batch: rotate index % 4, then flip."""
    x = torch.rot90(x, index % 4, dims=(2, 3))
    return torch.flip(x, dims=(3, )) if index >= 4 else x


def _undo_geometric_variant(x: torch.Tensor, index: int) -> torch.Tensor:
    x = torch.flip(x, dims=(3, )) if index >= 4 else x
    return torch.rot90(x, -(index % 4), dims=(2, 3))


@MODELS.register_module()
class LowLightEnhancer(BaseEditModel):
    """Low-light enhancement editor (MMagic ``BaseEditModel`` with illumination output).

    Args:
        generator (dict): The enhancement network, e.g. ``dict(type='RetinexMamba')``. When it
            accepts ``return_illumination=True`` its illumination map is kept for visualisation.
        pixel_loss (dict): The training loss, e.g. ``dict(type='L1Loss', loss_weight=1.0)``.
        train_cfg (dict, optional): Unused; kept for MMagic's signature.
        test_cfg (dict, optional): ``self_ensemble`` (bool, default False): average the outputs
            of the 8 flip/rotation variants (the authors' optional test-time ensemble).
        data_preprocessor (dict): Normalises inputs; see ``LowLightDataPreprocessor``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.test_cfg = dict(self.test_cfg or {})
        self._has_illumination = hasattr(self.generator, 'forward') and \
            'return_illumination' in self.generator.forward.__code__.co_varnames

    def _enhance(self, inputs: torch.Tensor):
        if self._has_illumination:
            return self.generator(inputs, return_illumination=True)
        return self.generator(inputs), None

    def enhance(self, inputs: torch.Tensor):
        """Enhance a normalised batch; returns ``(output, illumination or None)``."""
        if not self.test_cfg.get('self_ensemble', False):
            return self._enhance(inputs)
        outputs, illuminations = [], []
        for index in range(8):
            out, illu = self._enhance(_geometric_variant(inputs, index))
            outputs.append(_undo_geometric_variant(out, index))
            if illu is not None:
                illuminations.append(_undo_geometric_variant(illu, index))
        illumination = torch.stack(illuminations).mean(0) if illuminations else None
        return torch.stack(outputs).mean(0), illumination

    def forward_inference(self,
                          inputs: torch.Tensor,
                          data_samples: Optional[List[DataSample]] = None,
                          **kwargs) -> DataSample:
        output, illumination = self.enhance(inputs)
        predictions = DataSample(
            pred_img=self.data_preprocessor.destruct(output, data_samples).cpu())
        if illumination is not None:
            predictions.set_tensor_data({
                'pred_illumination':
                self.data_preprocessor.destruct(_to_display_range(illumination),
                                                data_samples).cpu()
            })
        return predictions


def _to_display_range(illumination: torch.Tensor) -> torch.Tensor:
    """Min-max stretch each illumination map to [0, 1] for display (the map is unconstrained)."""
    flat = illumination.flatten(1)
    low = flat.min(1).values.view(-1, 1, 1, 1)
    high = flat.max(1).values.view(-1, 1, 1, 1)
    return (illumination - low) / (high - low).clamp_min(1e-8)

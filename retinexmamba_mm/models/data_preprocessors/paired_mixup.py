"""Batch mixup for paired restoration: input and target mixed with the same partner and weight."""
from typing import Tuple

import torch
from mmagic.registry import MODELS


@MODELS.register_module()
class PairedMixup:
    """With probability ``prob``, mix every (input, target) pair with another pair of the batch.

    ``x_i <- lam * x_i + (1 - lam) * x_perm(i)`` and the same for the targets, with ONE
    ``lam ~ Beta(alpha, alpha)`` and one random permutation for the whole batch, as in the
    authors' recipe (BasicSR's ``Mixing_Augment`` draws ``lam`` once per batch with
    ``rsample((1, 1)).item()``; with ``use_identity`` it mixes half of the batches). Because the
    weights sum to one, mixing commutes with the preprocessor's affine normalisation.

    All randomness comes from torch's global CPU generator (seeded by mmengine from the
    config's ``randomness.seed``), so resumed or repeated runs mix identically on any device.

    Args:
        prob (float): Probability that a batch is mixed. Defaults to 0.5.
        alpha (float): Both parameters of the Beta distribution. Defaults to 1.2.
    """

    def __init__(self, prob: float = 0.5, alpha: float = 1.2):
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if not alpha > 0:
            raise ValueError(f'alpha must be > 0, got {alpha}')
        self.prob = prob
        self.alpha = alpha
        self._beta = torch.distributions.Beta(torch.tensor(float(alpha)),
                                              torch.tensor(float(alpha)))

    def __call__(self, inputs: torch.Tensor,
                 targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(f'inputs and targets differ in batch size: {tuple(inputs.shape)} '
                             f'vs {tuple(targets.shape)}')
        if torch.rand(()).item() >= self.prob:
            return inputs, targets
        lam = self._beta.sample().item()
        order = torch.randperm(inputs.shape[0]).to(inputs.device)
        return (lam * inputs + (1 - lam) * inputs[order],
                lam * targets + (1 - lam) * targets[order])

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, alpha={self.alpha})'

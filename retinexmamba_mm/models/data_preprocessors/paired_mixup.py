"""Batch mixup for paired restoration: input and target mixed with the same partner and weight."""
from typing import Optional, Tuple

import torch
from mmagic.registry import MODELS
from scipy.special import betaincinv
from torch import nn


@MODELS.register_module()
class PairedMixup(nn.Module):
    """With probability ``prob``, mix every (input, target) pair with another pair of the batch.

    ``x_i <- lam * x_i + (1 - lam) * x_perm(i)`` and the same for the targets, with ONE
    ``lam ~ Beta(alpha, alpha)`` and one random permutation for the whole batch, as in the
    authors' recipe (BasicSR's ``Mixing_Augment`` draws ``lam`` once per batch with
    ``rsample((1, 1)).item()``; with ``use_identity`` it mixes half of the batches). Because the
    weights sum to one, mixing commutes with the preprocessor's affine normalisation.

    The randomness comes from a private generator whose state is a persistent buffer, so it is
    saved in every checkpoint and ``--resume`` continues the exact mixing sequence of an
    uninterrupted run (the global RNG is re-seeded on resume, not restored). It is seeded from
    ``seed``, or from torch's initial seed (mmengine's ``randomness.seed`` + rank) when None.
    lam is drawn by inverting the Beta CDF of one uniform draw (exactly Beta distributed).

    Args:
        prob (float): Probability that a batch is mixed. Defaults to 0.5.
        alpha (float): Both parameters of the Beta distribution. Defaults to 1.2.
        seed (int, optional): Seed of the private generator. Defaults to None.
    """

    def __init__(self, prob: float = 0.5, alpha: float = 1.2, seed: Optional[int] = None):
        super().__init__()
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if not alpha > 0:
            raise ValueError(f'alpha must be > 0, got {alpha}')
        self.prob = prob
        self.alpha = alpha
        self._generator = torch.Generator().manual_seed(
            torch.initial_seed() if seed is None else seed)
        self.register_buffer('rng_state', self._generator.get_state())

    def forward(self, inputs: torch.Tensor,
                 targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(f'inputs and targets differ in batch size: {tuple(inputs.shape)} '
                             f'vs {tuple(targets.shape)}')
        self._generator.set_state(self.rng_state.cpu())
        mix, uniform = torch.rand(2, generator=self._generator).tolist()
        order = torch.randperm(inputs.shape[0], generator=self._generator)
        self.rng_state.copy_(self._generator.get_state())
        if mix >= self.prob:
            return inputs, targets
        lam = float(betaincinv(self.alpha, self.alpha, uniform))
        order = order.to(inputs.device)
        return (lam * inputs + (1 - lam) * inputs[order],
                lam * targets + (1 - lam) * targets[order])

    def extra_repr(self) -> str:
        return f'prob={self.prob}, alpha={self.alpha}'

"""PairedMixup: one lambda and one permutation per batch, shared by input and target."""
import pytest
import torch

from retinexmamba_mm.models.data_preprocessors import PairedMixup


def one_hot_batch(batch):
    """Sample i is the one-hot vector e_i as a (batch, 1, 1) image: mixes are readable."""
    return torch.eye(batch).reshape(batch, batch, 1, 1)


def read_mix(mixed):
    """Return (lambda, partner of each sample) from a mixed one-hot batch, checking its form."""
    batch = mixed.shape[0]
    weights = mixed.reshape(batch, batch)
    lam, partners = None, []
    for i in range(batch):
        row = weights[i]
        others = [j for j in range(batch) if j != i and row[j] > 0]
        assert len(others) <= 1
        if others:
            this_lam = row[i].item()
            assert row[others[0]].item() == pytest.approx(1 - this_lam, abs=1e-6)
            lam = this_lam if lam is None else lam
            assert this_lam == pytest.approx(lam, abs=1e-6)  # one lambda for the whole batch
            partners.append(others[0])
        else:
            assert row[i].item() == pytest.approx(1.0)
            partners.append(i)
    assert sorted(partners) == list(range(batch))  # a permutation
    return lam, partners


def test_input_and_target_mixed_with_same_partner_and_weight():
    torch.manual_seed(0)
    mixup = PairedMixup(prob=1.0, alpha=1.2)
    inputs = one_hot_batch(6)
    targets = 2 * inputs + 1  # any affine map survives mixing with weights summing to 1
    for _ in range(20):
        mixed_inputs, mixed_targets = mixup(inputs, targets)
        lam, partners = read_mix(mixed_inputs)
        torch.testing.assert_close(mixed_targets, 2 * mixed_inputs + 1)
        if lam is not None:
            assert 0 < lam < 1


def test_probability_and_beta_distribution():
    torch.manual_seed(1)
    inputs = one_hot_batch(4)
    mixed_count, lams = 0, []
    never = PairedMixup(prob=0.0)
    always = PairedMixup(prob=1.0, alpha=1.2)
    half = PairedMixup(prob=0.5)
    for _ in range(400):
        out, _ = never(inputs, inputs)
        assert out is inputs
        out, _ = half(inputs, inputs)
        mixed_count += out is not inputs
    for _ in range(1500):
        out, _ = always(inputs, inputs)
        lam, partners = read_mix(out)
        if lam is not None:
            lams.append(lam)
    assert 160 < mixed_count < 240  # 200 expected, binomial std 10
    lams = torch.tensor(lams)
    # Beta(1.2, 1.2): mean 0.5, variance a*a / ((2a)^2 (2a + 1)) = 1.44 / (5.76 * 3.4)
    assert lams.mean().item() == pytest.approx(0.5, abs=0.02)
    assert lams.var().item() == pytest.approx(1.44 / (5.76 * 3.4), rel=0.1)


def test_reproducible_from_torch_seed():
    inputs = torch.rand(5, 3, 4, 4)
    torch.manual_seed(123)
    first = [PairedMixup(prob=0.5)(inputs, inputs)[0] for _ in range(5)]
    torch.manual_seed(123)
    second = [PairedMixup(prob=0.5)(inputs, inputs)[0] for _ in range(5)]
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match='prob'):
        PairedMixup(prob=1.5)
    with pytest.raises(ValueError, match='alpha'):
        PairedMixup(alpha=0)
    with pytest.raises(ValueError, match='batch size'):
        PairedMixup(prob=1.0)(torch.zeros(2, 3, 1, 1), torch.zeros(3, 3, 1, 1))

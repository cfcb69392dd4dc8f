"""CudaGraphForward and ``enhance(cuda_graph=True)``: refused off CUDA; on the GPU machine the
replayed graph gives the eager forward's output, per shape, with outputs that stay valid."""
import numpy as np
import pytest
import torch

from retinexmamba_mm.apis import enhance
from retinexmamba_mm.apis.cuda_graph import CudaGraphForward
from retinexmamba_mm.models import RetinexMamba

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not HAS_CUDA, reason='CUDA graphs need a CUDA device (make gpu-test runs these there)')


def test_cpu_tensors_are_refused():
    with pytest.raises(ValueError, match='need a CUDA tensor'):
        CudaGraphForward(lambda x: x * 2)(torch.ones(2))


def test_enhance_refuses_cuda_graph_on_cpu():
    model = RetinexMamba(n_feat=8, num_blocks=(1, 1, 1), d_state=4).eval()
    with pytest.raises(ValueError, match='cuda_graph needs the model on a CUDA device'):
        enhance(model, np.zeros((8, 8, 3), np.uint8), cuda_graph=True)


@pytest.mark.gpu
@needs_cuda
def test_graph_replay_matches_eager_per_shape(true_fp32):
    torch.manual_seed(0)
    model = RetinexMamba(n_feat=16, num_blocks=(1, 1, 1), d_state=8).cuda().eval()
    graphed = CudaGraphForward(lambda x: model(x))
    with torch.inference_mode():
        for shape in [(1, 3, 64, 96), (1, 3, 52, 76), (1, 3, 64, 96)]:
            x = torch.rand(shape, device='cuda')
            first, = graphed(x)
            again, = graphed(x * 0.5)             # the first output must survive a replay
            torch.testing.assert_close(first, model(x), rtol=0, atol=1e-5)
            torch.testing.assert_close(again, model(x * 0.5), rtol=0, atol=1e-5)
    assert len(graphed._graphs) == 2


@pytest.mark.gpu
@needs_cuda
def test_enhance_with_cuda_graph_matches_eager():
    torch.manual_seed(0)
    model = RetinexMamba(n_feat=16, num_blocks=(1, 1, 1), d_state=8).cuda().eval()
    image = (np.random.default_rng(0).random((60, 84, 3)) * 90).astype(np.uint8)
    eager = enhance(model, image)
    for _ in range(2):   # capture, then replay
        out = enhance(model, image, cuda_graph=True)
        assert np.abs(out.astype(int) - eager.astype(int)).max() <= 1

"""Replay the forward as a CUDA graph, one graph per input shape.

A forward launches several hundred kernels; for small images (or tiles) the host's launch cost,
not the GPU, sets the time (H100, 256x256: 38 ms launched one by one, 16 ms replayed as a graph;
README, Benchmarks). A graph records the launches once and replays them with one call. Worth it
when many inputs share a size (a test set, video frames, the tiles of a large photo); each new
size costs one capture (three warm-up runs and the recording).
"""
import torch

__all__ = ['CudaGraphForward']


class CudaGraphForward:
    """``fn(x) -> tuple of tensors``, replayed from a CUDA graph captured per shape and dtype.

    Outputs are copies, so they stay valid after the next call. All graphs share one memory
    pool (they never run at the same time). ``fn`` must be free of host synchronisation and of
    shape-dependent Python control flow beyond the input's shape (true of RetinexMamba's forward
    with the triton and mamba_ssm scans).

    Args:
        fn: The forward, called with one CUDA tensor, returning a tensor or a tuple of tensors.
        max_graphs (int): Graphs kept; the oldest is dropped beyond this. Default: 8.
    """

    def __init__(self, fn, max_graphs=8):
        self.fn = fn
        self.max_graphs = max_graphs
        self._graphs = {}
        self._pool = None

    def __call__(self, x):
        if x.device.type != 'cuda':
            raise ValueError(f'CudaGraphForward: CUDA graphs need a CUDA tensor, got {x.device}')
        key = (tuple(x.shape), x.dtype, x.device, torch.is_grad_enabled(),
               torch.is_autocast_enabled('cuda'))
        if key not in self._graphs:
            if len(self._graphs) >= self.max_graphs:
                self._graphs.pop(next(iter(self._graphs)))
            self._graphs[key] = self._capture(x)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(x)
        graph.replay()
        return tuple(out.clone() for out in static_out)

    def _capture(self, x):
        static_in = x.clone()
        stream = torch.cuda.Stream(x.device)
        stream.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(stream):   # warm-up: compile kernels, settle the allocator
            for _ in range(3):
                self.fn(static_in)
        torch.cuda.current_stream(x.device).wait_stream(stream)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            out = self.fn(static_in)
        return graph, static_in, out if isinstance(out, tuple) else (out, )

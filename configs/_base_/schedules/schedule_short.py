# The recipe (schedule_150k) shrunk tenfold for ablations: 15k iterations with the same lr shape,
# a rise to 3e-4 over the first 46/150 of the run then a full cosine decay to 1e-6, so every
# variant ends annealed and no comparison is taken mid-schedule. Optimizer and clipping as in the
# recipe. To change the length, keep the periods summing to max_iters.
from mmengine.config import read_base

with read_base():
    from .schedule_150k import *  # noqa: F401,F403

param_scheduler[0].update(periods=[4600, 10400])  # noqa: F405
train_cfg.update(max_iters=15000)  # noqa: F405

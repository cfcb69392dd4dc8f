# Ablation: the LOL-v1 recipe on the tenfold shorter schedule (15k iterations, same lr shape),
# the schedule the other ablations can be rerun on when 150k iterations are too many.
from mmengine.config import read_base

with read_base():
    from ..retinexmamba_lol_v1 import *  # noqa: F401,F403
    from .._base_.schedules.schedule_short import *  # noqa: F401,F403

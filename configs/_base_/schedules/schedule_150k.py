# The authors' recipe (RetinexMamba/Retinexformer options files): 150k iterations, Adam 2e-4,
# gradient-norm clipping at 0.01, cyclic cosine lr [46k rising to 3e-4, 104k decaying to 1e-6],
# validation every 1k iterations. Types are registry names (default_scope='mmagic'), so
# --cfg-options and mim can address every field.

# BasicSR's use_grad_clip is torch.nn.utils.clip_grad_norm_(params, 0.01): the global L2 norm
# of all gradients. mmengine's clip_grad=dict(max_norm=...) calls the same function on the
# optimizer's parameters (type='norm' is its default).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.999), weight_decay=0),
    clip_grad=dict(max_norm=0.01))

# lr(t) = eta_min_i + 0.5 * (2e-4 - eta_min_i) * (1 + cos(pi * (t - start_i) / period_i)):
# 2e-4 rising to 3e-4 over iterations 0..46000, then 2e-4 decaying to 1e-6 until 150000.
param_scheduler = [
    dict(
        type='CosineRestartCyclicLR',
        periods=[46000, 104000],
        restart_weights=[1, 1],
        eta_mins=[3e-4, 1e-6],
        by_epoch=False),
]

train_cfg = dict(type='IterBasedTrainLoop', max_iters=150000, val_interval=1000)
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')

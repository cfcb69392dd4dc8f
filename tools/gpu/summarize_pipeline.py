"""Summarise a gpu_pipeline.sh run: iteration time, memory, loss curves side by side, metrics."""
import glob
import json
import os.path as osp
import sys


def scalars(work_dir):
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    records = []
    for path in files:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def main(root):
    runs = {name: scalars(osp.join(root, name)) for name in ('fp32', 'amp', 'dist')}
    print(f'{"run":<6}{"iters":>7}{"s/iter":>9}{"mem MB":>9}{"first loss":>12}{"last loss":>11}'
          f'{"val PSNR":>10}')
    for name, records in runs.items():
        train = [r for r in records if 'loss' in r]
        if not train:
            continue
        times = sorted(r['time'] for r in train[1:]) or [train[0]['time']]
        val = [r for r in records if 'PSNR' in r]
        print(f'{name:<6}{train[-1]["iter"]:>7}{times[len(times) // 2]:>9.3f}'
              f'{max(r.get("memory", 0) for r in train):>9}{train[0]["loss"]:>12.4f}'
              f'{train[-1]["loss"]:>11.4f}{val[-1]["PSNR"] if val else float("nan"):>10.3f}')
    if runs['fp32'] and runs['dist']:
        print('\nloss, 1 GPU x 8 vs 2 GPUs x 4 (same global batch):')
        dist = {r['iter']: r['loss'] for r in runs['dist'] if 'loss' in r}
        for r in runs['fp32']:
            if 'loss' in r and r['iter'] in dist:
                print(f'  iter {r["iter"]:>5}: {r["loss"]:.4f}  {dist[r["iter"]]:.4f}')
    # Validation records carry the epoch as their step (LoggerHook's log_metric_by_epoch), so
    # each is labelled with the last training iteration logged before it.
    print('\nval PSNR / SSIM by iteration:')
    for name, records in runs.items():
        val, last_iter = [], 0
        for r in records:
            last_iter = r.get('iter', last_iter)
            if 'PSNR' in r:
                val.append(f'{last_iter}: {r["PSNR"]:.3f} / {r.get("SSIM", float("nan")):.4f}')
        if val:
            print(f'  {name:<5} ' + ', '.join(val))
    for name in ('test1', 'test2'):
        path = osp.join(root, name, 'metrics.json')
        if osp.isfile(path):
            with open(path) as f:
                print(name, json.load(f)['test']['metrics'])


if __name__ == '__main__':
    main(sys.argv[1])

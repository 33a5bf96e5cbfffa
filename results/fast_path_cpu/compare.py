"""Short fast-path vs exact-path MNIST runs against the committed Table 1 runs' same epochs (3-seed spread)."""
import csv, json, statistics, sys
from pathlib import Path
REPO = Path('/work/main')
runs = Path(sys.argv[1]); out = Path(sys.argv[2])
def rows(p): return list(csv.DictReader(open(p)))
committed = {s: rows(REPO/f'results/table1_cpu/mlp-mnist-bmrs_n_release-seed{s}.csv') for s in (1000, 100, 1001)}
lines = ['| run | seed | epoch | val top-1 | units pruned % | epoch time s |', '|---|---|---|---|---|---|']
ours = {}
for mode in ('fast', 'exact_unfused'):
    for p in sorted((runs/mode/'m').glob('*.csv')):
        seed = int(p.stem.rsplit('seed', 1)[1])
        for r in rows(p):
            if r['phase'] != 'train': continue
            ours[(mode, seed, int(r['epoch']))] = r
epochs = sorted({e for (_, _, e) in ours})
for e in epochs:
    vals = [float(committed[s][e - 1]['val_top1']) for s in committed]
    comp = [float(committed[s][e - 1]['unit_compression']) for s in committed]
    lines.append(f"| committed (exact, 3 seeds) | 1000, 100, 1001 | {e} | {statistics.fmean(vals):.2f} ± {statistics.stdev(vals):.2f} (min {min(vals):.2f}, max {max(vals):.2f}) | "
                 f"{statistics.fmean(comp):.2f} ± {statistics.stdev(comp):.2f} | |")
    for (mode, seed, ee), r in sorted(ours.items()):
        if ee != e: continue
        lines.append(f"| {'fast sampler' if mode == 'fast' else 'exact sampler (rerun)'} | {seed} | {e} | {float(r['val_top1']):.2f} | {float(r['unit_compression']):.2f} | |")
timing = {}
for p in sorted(runs.glob('timing-*.json')):
    t = json.load(open(p)); timing[p.stem] = t['train_epoch']
lines += ['', 'Wall time per epoch (s; training + validation; both samplers ran side by side, one thread each, on a machine '
          'loaded by other jobs — compare the ratio, not the seconds):', '']
for k, v in timing.items(): lines.append(f"- {k}: " + ', '.join(f"{x:.1f}" for x in v))
out.write_text('\n'.join(lines) + '\n'); print('\n'.join(lines))

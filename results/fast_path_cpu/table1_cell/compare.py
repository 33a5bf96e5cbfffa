"""Full Table 1 cells on the fast sampler (seed 1000) next to the committed exact-sampler runs of the same setting.

    python results/fast_path_cpu/table1_cell/compare.py
"""
import json, statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
T1 = HERE.parents[1]/'table1_cpu'
KEYS = (('test_top1', 'test top-1 %', 2), ('unit_compression', 'units pruned %', 1), ('param_compression_release', "parameters removed % (release's count)", 1))

def main():
    print('| setting | ' + ' | '.join(f'{h}: fast seed 1000 vs committed seeds 1000 / 100 / 1001 (range)' for _, h, _ in KEYS) + ' | train + fine-tune s (fast) |')
    print('|---|' + '---|'*len(KEYS) + '---|')
    for f in sorted(HERE.glob('*-seed1000.json')):
        fast = json.loads(f.read_text())['metrics']
        ref = [json.loads((T1/f.name.replace('seed1000', f'seed{s}')).read_text())['metrics'] for s in (1000, 100, 1001)]
        cells = []
        for k, _, d in KEYS:
            v = [r[k] for r in ref]
            inside = 'inside' if min(v) <= fast[k] <= max(v) else f"{'above' if fast[k] > max(v) else 'below'} by {min(abs(fast[k] - max(v)), abs(fast[k] - min(v))):.{d}f}"
            cells.append(f"{fast[k]:.{d}f} vs {' / '.join(f'{x:.{d}f}' for x in v)} ({inside})")
        t = fast['times']
        print(f"| {f.name.rsplit('-seed', 1)[0]} | " + ' | '.join(cells) + f" | {t['train'] + t['fine_tune']:.0f} |")

if __name__ == '__main__': main()

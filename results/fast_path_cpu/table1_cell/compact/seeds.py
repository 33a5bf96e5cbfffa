"""The Table 1 cells trained with --compact at the three committed seeds (1000 from `compact/` and `mlp/compact/`,
100 and 1001 from `seeds/`) beside the committed exact-path runs (`results/table1_cpu/`) and the fast-path runs without
--compact (`../`): test top-1, units pruned, parameters removed (the release's count), units kept per layer.
Prints Markdown tables; run from anywhere: python results/fast_path_cpu/table1_cell/compact/seeds.py"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
SEEDS = (1000, 100, 1001)
SOURCES = {   # (network, kind) -> folder of each seed's record
    ('lenet5', 'exact'): {s: REPO/'results'/'table1_cpu' for s in SEEDS},
    ('lenet5', 'fast'): {1000: HERE.parent},
    ('lenet5', 'compact'): {1000: HERE/'compact', 100: HERE/'seeds', 1001: HERE/'seeds'},
    ('mlp', 'exact'): {s: REPO/'results'/'table1_cpu' for s in SEEDS},
    ('mlp', 'fast'): {s: HERE.parent for s in SEEDS},
    ('mlp', 'compact'): {1000: HERE/'mlp'/'compact', 100: HERE/'seeds', 1001: HERE/'seeds'},
}
METRICS = (('test top-1 %', lambda m: f"{m['test_top1']:.2f}", lambda m: m['test_top1']),
           ('units pruned %', lambda m: f"{m['unit_compression']:.1f}", lambda m: m['unit_compression']),
           ("parameters removed % (release's count)", lambda m: f"{m['param_compression_release']:.1f}", lambda m: m['param_compression_release']),
           ('units kept per layer', lambda m: '/'.join(str(l['kept']) for l in m['layers']), None))


def metrics(network, kind, seed):
    folder = SOURCES[(network, kind)].get(seed)
    if folder is None: return None
    p = folder/f'{network}-mnist-bmrs_n_release-seed{seed}.json'
    return json.loads(p.read_text())['metrics'] if p.exists() else None


def main():
    for network in ('lenet5', 'mlp'):
        print(f"\n**{network}** (MNIST, BMRS_N with the release's ΔF), seeds {' / '.join(map(str, SEEDS))}:\n")
        print('| metric | exact path (committed) | fast path | --compact | --compact mean (range of the exact path) |')
        print('|---|---|---|---|---|')
        for name, fmt, val in METRICS:
            cells, means = [], {}
            for kind in ('exact', 'fast', 'compact'):
                ms = [metrics(network, kind, s) for s in SEEDS]
                cells.append(('; ' if val is None else ' / ').join('–' if m is None else fmt(m) for m in ms))   # kept per layer: seeds apart by ';'
                if val is not None and all(m is not None for m in ms): means[kind] = [val(m) for m in ms]
            last = ''
            if 'compact' in means and 'exact' in means:
                c, e = means['compact'], means['exact']
                last = f"{sum(c)/len(c):.2f} ({min(e):.2f}–{max(e):.2f})"
            print(f"| {name} | {' | '.join(cells)} | {last} |")

if __name__ == '__main__': main()

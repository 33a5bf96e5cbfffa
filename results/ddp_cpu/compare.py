"""The table of results/ddp_cpu/README.md: 2-process runs next to the 1-process Table 1 runs of the same options.

    python results/ddp_cpu/compare.py
"""
import json, statistics, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from bmrs.methods import criterion_of
SEEDS = (1000, 100, 1001)
SAME = ('network', 'dataset', 'criterion', 'delta_f', 'batch_size', 'n_layers', 'hidden_dim', 'learning_rate',
        'n_epochs', 'fine_tune_epochs', 'sampler', 'kl_averaging')

def records(folder, stem):
    return [json.loads((folder/f'{stem}-seed{s}.json').read_text()) for s in SEEDS]

def cells(recs, key, digits=2):
    v = [r['metrics'][key] for r in recs]
    return ' / '.join(f'{x:.{digits}f}' for x in v) + f' (mean {statistics.mean(v):.{digits}f}, sd {statistics.stdev(v):.{digits}f})'

def main():
    one = records(HERE.parent/'table1_cpu', 'mlp-mnist-bmrs_n_release')
    two = records(HERE, 'mlp-mnist-bmrs_n_release-2proc')
    for r in one + two: r['config']['criterion'] = criterion_of(r['config']['pruning_class'])   # a release class name or a criterion
    for a, b in zip(one, two):
        diff = {k: (a['config'].get(k, 'exact'), b['config'].get(k)) for k in SAME if a['config'].get(k, 'exact') != b['config'].get(k)}
        if diff: sys.exit(f"compare.py: error: options differ: {diff}")
        if b['config'].get('world_size', b['environment'].get('world_size')) != 2: sys.exit("compare.py: error: a 2-process record without world_size 2")
    print('| run (seeds 1000 / 100 / 1001) | processes | test top-1 % | units pruned % | parameters removed % (release\'s count) |')
    print('|---|---|---|---|---|')
    for name, n, recs in (('table1_cpu/mlp-mnist-bmrs_n_release', 1, one), ('ddp_cpu/mlp-mnist-bmrs_n_release-2proc', 2, two)):
        print(f"| `{name}` | {n} | {cells(recs, 'test_top1')} | {cells(recs, 'unit_compression', 1)} | {cells(recs, 'param_compression_release', 1)} |")

if __name__ == '__main__': main()

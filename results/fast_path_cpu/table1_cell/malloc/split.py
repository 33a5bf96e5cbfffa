"""The LeNet5 Table 1 cell with --compact, glibc's malloc as it comes against keeping freed memory (this folder's two
runs, side by side): time by stretch of epochs, and whether the two computed the same. Prints Markdown;
run from anywhere: python results/fast_path_cpu/table1_cell/malloc/split.py"""
import csv, json
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = 'lenet5-mnist-bmrs_n_release-seed1000'


def run(kind):
    rows = list(csv.DictReader(open(HERE/kind/f'{NAME}.csv')))
    ends = [float(r['time']) for r in rows]
    return rows, [b - a for a, b in zip([0.] + ends, ends)], json.loads((HERE/kind/f'{NAME}.json').read_text())['metrics']


def main():
    (ra, sa, ma), (rb, sb, mb) = run('default'), run('keep')
    out = ['| epochs | default s | keep s | default / keep |', '|---|---|---|---|']
    for lo, hi in ((0, 16), (16, 28), (28, len(ra)), (0, len(ra))):
        a, b = sum(sa[lo:hi]), sum(sb[lo:hi])
        out.append(f"| {lo + 1}–{hi} | {a:.1f} | {b:.1f} | {a/b:.2f}× |")
    print('\n'.join(out) + '\n')
    same = all(x[k] == y[k] for x, y in zip(ra, rb) for k in x if k != 'time')
    print(f"Every per-epoch number but the time the same in both runs: {same}; test top-1 {ma['test_top1']:.2f} / {mb['test_top1']:.2f} %, "
          f"units pruned {ma['unit_compression']:.2f} / {mb['unit_compression']:.2f} %")

if __name__ == '__main__': main()

"""The LeNet5 Table 1 cell with and without --compact (this folder's two runs): time by stretch of epochs, and what
each run ends with; then the compact cell against 60 epochs of the plain LeNet5 (`vs_plain/`); the MLP cell (`mlp/`);
the compact cell before and after tiny convolutions ran as one matrix product (`row_gemm/`). Prints Markdown tables;
run from anywhere: python results/fast_path_cpu/table1_cell/compact/split.py"""
import csv, json
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = 'lenet5-mnist-bmrs_n_release-seed1000'


def run(kind, name=NAME):
    rows = list(csv.DictReader(open(HERE/kind/f'{name}.csv')))
    ends = [float(r['time']) for r in rows]
    secs = [b - a for a, b in zip([0.] + ends, ends)]              # seconds per epoch (training, validation, compression)
    return rows, secs, json.loads((HERE/kind/f'{name}.json').read_text())['metrics']


def first_late(rows, late_at=80):
    "(index of the first epoch that ends with units pruned, of the first that ends with at least `late_at` % pruned)."
    return (next(i for i, r in enumerate(rows) if float(r['unit_compression']) > 0),
            next(i for i, r in enumerate(rows) if float(r['unit_compression']) >= late_at))


def stretches(rows):
    "Index ranges of the epochs before any unit is pruned, up to 80 % pruned, and after (and the whole cell)."
    first, late = first_late(rows)
    return ((0, first + 1), (first + 1, late + 1), (late + 1, len(rows)), (0, len(rows)))


def main():
    (ra, sa, ma), (rb, sb, mb) = run('masked'), run('compact')
    first, late = first_late(ra)
    out = ['| epochs | units pruned | masked s | compact s | masked / compact |', '|---|---|---|---|---|']
    for lo, hi, what in ((0, first + 1, 'none yet (pruning starts at the end of the last)'),
                         (first + 1, late + 1, f"{ra[first]['unit_compression'][:4]}–{ra[late]['unit_compression'][:4]} %"),
                         (late + 1, len(ra), f"{ra[late + 1]['unit_compression'][:4]} % and up"), (0, len(ra), 'the whole cell')):
        a, b = sum(sa[lo:hi]), sum(sb[lo:hi])
        out.append(f"| {lo + 1}–{hi} | {what} | {a:.1f} | {b:.1f} | {a/b:.2f}× |")
    print('\n'.join(out) + '\n')
    print('| run | test top-1 % | units pruned % | units kept per layer | parameters removed % | train + fine-tune s |')
    print('|---|---|---|---|---|---|')
    for k, m in (('masked', ma), ('compact', mb)):
        print(f"| {k} | {m['test_top1']:.2f} | {m['unit_compression']:.2f} | {' / '.join(str(l['kept']) for l in m['layers'])} | "
              f"{m['param_compression']:.2f} | {m['times']['train'] + m['times']['fine_tune']:.0f} |")
    same = sum(x['unit_compression'] == y['unit_compression'] for x, y in zip(ra, rb))
    print(f"\nEpochs with the same unit compression in both runs: {same} of {len(ra)}; "
          f"largest difference of the per-epoch training loss: {max(abs(float(x['loss']) - float(y['loss'])) for x, y in zip(ra, rb)):.4f}")

    (rc, sc, mc), (rp, sp, mp) = run('vs_plain/compact'), run('vs_plain/plain', 'lenet5-mnist-none-seed1000')
    same = all(x[k] == y[k] for x, y in zip(rb, rc) for k in x if k != 'time')
    print(f"\nThe compact cell run again beside the plain network: every per-epoch number but the time the same as above: {same}\n")
    print('| epochs | compact cell s | plain LeNet5 s | compact / plain |', '|---|---|---|---|', sep='\n')
    for lo, hi in stretches(rc):
        a, b = sum(sc[lo:hi]), sum(sp[lo:hi])
        print(f"| {lo + 1}–{hi} | {a:.1f} | {b:.1f} | {a/b:.2f}× |")
    print(f"\nPlain LeNet5, 60 epochs without gates: test top-1 {mp['test_top1']:.2f} %")
    mlp = 'mlp-mnist-bmrs_n_release-seed1000'
    (ra, sa, ma), (rb, sb, mb) = run('mlp/masked', mlp), run('mlp/compact', mlp)
    first, late = first_late(ra, 70)
    print('\nThe MLP cell (`mlp/`), masked against compact:\n')
    print('| epochs | units pruned | masked s | compact s | masked / compact |', '|---|---|---|---|---|', sep='\n')
    for lo, hi, what in ((0, first + 1, 'none yet'), (first + 1, late + 1, f"{ra[first]['unit_compression'][:4]}–{ra[late]['unit_compression'][:4]} %"),
                         (late + 1, len(ra), f"{ra[late + 1]['unit_compression'][:4]} % and up"), (0, len(ra), 'the whole cell')):
        a, b = sum(sa[lo:hi]), sum(sb[lo:hi])
        print(f"| {lo + 1}–{hi} | {what} | {a:.1f} | {b:.1f} | {a/b:.2f}× |")
    print('\n| run | test top-1 % | units pruned % | parameters removed % |', '|---|---|---|---|', sep='\n')
    for k, m in (('masked', ma), ('compact', mb)):
        print(f"| {k} | {m['test_top1']:.2f} | {m['unit_compression']:.2f} | {m['param_compression']:.2f} |")


def row_gemm():
    "`row_gemm/`: the compact cell at fb98db9 against b7e82b3 (tiny convolutions as one matrix product), and b7e82b3 beside the plain LeNet5."
    (ra, sa, ma), (rb, sb, mb) = run('row_gemm/before'), run('row_gemm/after')
    (r0, s0, m0) = run('row_gemm/alone_before')
    print('\nThe compact cell before (fb98db9) and after (b7e82b3) tiny convolutions ran as one matrix product (`row_gemm/`):\n')
    print('| epochs | units pruned | before s | after s | before / after |', '|---|---|---|---|---|', sep='\n')
    for lo, hi in stretches(ra):
        a, b = sum(sa[lo:hi]), sum(sb[lo:hi])
        print(f"| {lo + 1}–{hi} | {ra[lo]['unit_compression'][:4]}–{ra[hi - 1]['unit_compression'][:4]} % | {a:.1f} | {b:.1f} | {a/b:.2f}× |")
    print('\n| run | test top-1 % | units pruned % | units kept per layer | parameters removed % | train + fine-tune s |', '|---|---|---|---|---|---|', sep='\n')
    for k, m in (('before', ma), ('after', mb), ('before, alone', m0)):
        print(f"| {k} | {m['test_top1']:.2f} | {m['unit_compression']:.2f} | {' / '.join(str(l['kept']) for l in m['layers'])} | "
              f"{m['param_compression']:.2f} | {m['times']['train'] + m['times']['fine_tune']:.0f} |")
    first = next((i for i, (x, y) in enumerate(zip(ra, rb)) if any(x[k] != y[k] for k in x if k != 'time')), len(ra))
    same = sum(x['unit_compression'] == y['unit_compression'] for x, y in zip(ra, rb))
    print(f"\nEvery per-epoch number but the time the same up to epoch {first} (of {len(ra)}); epochs with the same unit compression: "
          f"{same}; largest difference of the per-epoch training loss: {max(abs(float(x['loss']) - float(y['loss'])) for x, y in zip(ra, rb)):.4f}")
    (r1, s1, m1) = run('row_gemm/alone_after')
    print(f"The runs alone have every per-epoch number but the time of `before/` (`alone_before/`): "
          f"{all(x[k] == y[k] for x, y in zip(ra, r0) for k in x if k != 'time')}; of `after/` (`alone_after/`): "
          f"{all(x[k] == y[k] for x, y in zip(rb, r1) for k in x if k != 'time')}; epochs alone: {sum(s0):.1f} s before, {sum(s1):.1f} s after")
    (rc, sc, mc), (rp, sp, mp) = run('row_gemm/vs_plain/compact'), run('row_gemm/vs_plain/plain', 'lenet5-mnist-none-seed1000')
    print(f"\nThe after cell run again beside the plain LeNet5 (`row_gemm/vs_plain/`); every per-epoch number but the time the same as "
          f"`after/`: {all(x[k] == y[k] for x, y in zip(rb, rc) for k in x if k != 'time')}\n")
    print('| epochs | compact cell s | plain LeNet5 s | compact / plain |', '|---|---|---|---|', sep='\n')
    for lo, hi in stretches(rc):
        a, b = sum(sc[lo:hi]), sum(sp[lo:hi])
        print(f"| {lo + 1}–{hi} | {a:.1f} | {b:.1f} | {a/b:.2f}× |")


if __name__ == '__main__':
    main(); row_gemm()

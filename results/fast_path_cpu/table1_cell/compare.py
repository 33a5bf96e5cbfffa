"""Full Table 1 cells on the fast sampler (seed 1000) next to the committed exact-sampler runs of the same setting; and,
for a setting run on the fast sampler at all three committed seeds, the two samplers seed by seed.

    python results/fast_path_cpu/table1_cell/compare.py
"""
import json, statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
T1 = HERE.parents[1]/'table1_cpu'
SEEDS = (1000, 100, 1001)
KEYS = (('test_top1', 'test top-1 %', 2), ('unit_compression', 'units pruned %', 1), ('param_compression_release', "parameters removed % (release's count)", 1))

def _seq(xs, d):
    "Values `xs` with `d` decimals, slash-separated, as every table here lists seeds."
    return ' / '.join(f'{x:.{d}f}' for x in xs)

def _metrics(paths):
    "The `metrics` of each run record in `paths`."
    return [json.loads(p.read_text())['metrics'] for p in paths]

def _table(header, rows):
    "Print a Markdown table (`header`: its first row, `rows`: the others) after a blank line, if it has rows."
    if rows: print('\n' + header + '\n|' + '---|'*(header.count('|') - 1) + '\n' + '\n'.join(rows))

def main():
    print('| setting | ' + ' | '.join(f'{h}: fast seed 1000 vs committed seeds 1000 / 100 / 1001 (range)' for _, h, _ in KEYS) + ' | train + fine-tune s (fast) |')
    print('|---|' + '---|'*len(KEYS) + '---|')
    for f in sorted(HERE.glob('*-seed1000.json')):
        fast = json.loads(f.read_text())['metrics']
        ref = _metrics(T1/f.name.replace('seed1000', f'seed{s}') for s in SEEDS)
        cells = []
        for k, _, d in KEYS:
            v = [r[k] for r in ref]
            inside = 'inside' if min(v) <= fast[k] <= max(v) else f"{'above' if fast[k] > max(v) else 'below'} by {min(abs(fast[k] - max(v)), abs(fast[k] - min(v))):.{d}f}"
            cells.append(f"{fast[k]:.{d}f} vs {_seq(v, d)} ({inside})")
        t = fast['times']
        print(f"| {f.name.rsplit('-seed', 1)[0]} | " + ' | '.join(cells) + f" | {t['train'] + t['fine_tune']:.0f} |")
    seeds_table()

def seeds_table():
    "The settings run on the fast sampler at every committed seed: fast and exact seed by seed, their means and the difference."
    rows = []
    for f in sorted(HERE.glob('*-seed1000.json')):
        name = f.name.rsplit('-seed', 1)[0]
        paths = [HERE/f'{name}-seed{s}.json' for s in SEEDS]
        if not all(p.exists() for p in paths): continue
        fast, ref = _metrics(paths), _metrics(T1/f'{name}-seed{s}.json' for s in SEEDS)
        for k, h, d in KEYS:
            a, b = [r[k] for r in fast], [r[k] for r in ref]
            rows.append(f"| {name} | {h} | {_seq(a, d)} ({statistics.fmean(a):.{d}f}) | "
                        f"{_seq(b, d)} ({statistics.fmean(b):.{d}f}) | {statistics.fmean(a) - statistics.fmean(b):+.{d}f} |")
    _table(f"| setting | metric | fast sampler, seeds {' / '.join(map(str, SEEDS))} (mean) | exact sampler (committed), the same seeds (mean) | fast − exact |", rows)
    exact_table()

def exact_table():
    "Settings with exact-path runs at other seeds (`exact_seeds/`): all exact seeds against the fast ones, range and mean."
    rows = []
    for name in sorted({p.name.rsplit('-seed', 1)[0] for p in (HERE/'exact_seeds').glob('*.json')}):
        extra = sorted((HERE/'exact_seeds').glob(f'{name}-seed*.json'), key=lambda p: int(p.stem.rsplit('seed', 1)[1]))
        ex = _metrics(T1/f'{name}-seed{s}.json' for s in SEEDS) + _metrics(extra)
        seeds = list(SEEDS) + [int(p.stem.rsplit('seed', 1)[1]) for p in extra]
        fast = _metrics(sorted(HERE.glob(f'{name}-seed*.json')))
        for k, h, d in KEYS:
            a, b = [r[k] for r in ex], [r[k] for r in fast]
            rows.append(f"| {name} | {h} | {_seq(a, d)} ({statistics.fmean(a):.{d}f}; {min(a):.{d}f}–{max(a):.{d}f}) | "
                        f"{statistics.fmean(b):.{d}f} ({min(b):.{d}f}–{max(b):.{d}f}, {len(b)} seeds) |")
    if rows: _table(f"| setting | metric | exact sampler, seeds {' / '.join(map(str, seeds))} (mean; range) | fast sampler (mean, range) |", rows)

if __name__ == '__main__': main()

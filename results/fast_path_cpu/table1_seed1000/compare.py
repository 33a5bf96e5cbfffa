"""Issue 19's Done-when: every gated Table 1 setting rerun at seed 1000 on the fast sampler (this folder's records, made by
`grid.yaml`) against the committed exact-sampler runs of the same setting (results/table1_cpu, seeds 1000 / 100 / 1001).

    python results/fast_path_cpu/table1_seed1000/compare.py

Prints a Markdown table (one row per setting: the fast run's number, the committed seeds' and where it lies) and a
summary line per number. "Spread" is judged two ways:
- the committed seeds' range (min to max). A fourth run from the same distribution lands inside the range of three with
  probability 1/2 only (it is equally likely to be any of the four ranks), so about half the settings are expected
  outside it by chance alone;
- the 95 % prediction interval of one new run from the three seeds (normal, Student t with 2 degrees of freedom):
  mean ± t · sd · sqrt(1 + 1/3). A run from the same distribution lands inside it with probability 0.95.
"""
import json, math, statistics, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
T1 = HERE.parents[1]/'table1_cpu'
sys.path.insert(0, str(HERE.parents[2]))
from bmrs.train import config_of   # the record's options as a TrainConfig: its criterion whatever the class was called
SEEDS = (1000, 100, 1001)
KEYS = (('test_top1', 'test top-1 %', 2), ('unit_compression', 'units pruned %', 1),
        ('param_compression_release', "parameters removed % (release's count)", 1))

T975_2 = 4.302652729749462   # scipy.stats.t.ppf(0.975, 2): Student t, 2 degrees of freedom (three seeds)

def interval(ref) -> tuple:
    "95 % prediction interval of one new draw from the distribution the three values `ref` came from."
    m, sd = statistics.fmean(ref), statistics.stdev(ref)
    h = T975_2*sd*math.sqrt(1 + 1/len(ref))
    return m - h, m + h

def outside(v, lo, hi, tol=1e-9) -> float:
    "How far `v` lies outside [lo, hi] (0: inside, or outside by float rounding only: three equal values' mean may not be exactly them)."
    off = v - hi if v > hi else lo - v if v < lo else 0.
    return off if off > tol*max(1., abs(v)) else 0.

def rows():
    out = []
    for f in sorted(HERE.glob('*-seed1000.json')):
        name = f.name.rsplit('-seed', 1)[0]
        fast = json.loads(f.read_text())
        ref = [json.loads((T1/f'{name}-seed{s}.json').read_text()) for s in SEEDS]
        if fast['config'].get('sampler') != 'fast': sys.exit(f"{f.name}: not a fast-sampler run")
        diff = {k: (v, ref[0]['config'].get(k)) for k, v in fast['config'].items()
                if k not in ('sampler', 'metrics_dir', 'output_dir', 'data_root', 'compression_percentage_file', 'progress',
                             'n_epochs_run', 'run_name', 'pruning_class')   # where it ran; the class by name or alias
                and k in ref[0]['config'] and ref[0]['config'][k] != v}
        a, b = config_of(fast), config_of(ref[0])
        if (a.criterion, a.method) != (b.criterion, b.method): diff['criterion, method'] = ((a.criterion, a.method), (b.criterion, b.method))
        if diff: sys.exit(f"{f.name}: options differ from the committed runs: {diff}")
        out.append((name, fast, ref))
    return out

def main():
    rs = rows()
    print('| setting | ' + ' | '.join(f'{h}: fast; committed {" / ".join(map(str, SEEDS))}; 95 % interval' for _, h, _ in KEYS) + ' | fast run s |')
    print('|---|' + '---|'*len(KEYS) + '---|')
    tally = {k: ([], []) for k, _, _ in KEYS}
    for name, fast, ref in rs:
        cells = []
        for k, _, d in KEYS:
            v, r = fast['metrics'][k], [x['metrics'][k] for x in ref]
            lo, hi = interval(r)
            o_range, o_pi = outside(v, min(r), max(r)), outside(v, lo, hi)
            tally[k][0].append((name, o_range)); tally[k][1].append((name, o_pi))
            mark = 'in range' if not o_range else 'in interval' if not o_pi else f'**outside by {o_pi:.{d}f}**'
            cells.append(f"{v:.{d}f}; {' / '.join(f'{x:.{d}f}' for x in r)}; [{lo:.{d}f}, {hi:.{d}f}] {mark}")
        t = fast['metrics']['times']
        print(f"| {name} | " + ' | '.join(cells) + f" | {t['train'] + t['fine_tune']:.0f} |")
    print()
    for k, h, d in KEYS:
        rng, pi = tally[k]
        out = [(n, o) for n, o in pi if o > 0]
        print(f"- {h}: {sum(o == 0 for _, o in rng)} of {len(rng)} inside the committed seeds' range (about half expected by chance), "
              f"{len(pi) - len(out)} of {len(pi)} inside the 95 % interval"
              + (f"; outside it: {', '.join(f'{n} by {o:.{d}f}' for n, o in sorted(out, key=lambda t: -t[1]))}" if out else ''))

if __name__ == '__main__': main()

"""Regenerate the benchmark pages (`results/benchmarks/*.md`) from the committed JSON records, so that every number a
page states comes from a file next to it. Reads JSON only (seconds); nothing is measured.

    python benchmarks/pages.py [--results results] [--check]

Pages: one per runtime benchmark record in `results/benchmarks/` (`kind: runtime_benchmark`: `runtime.md`,
`fast_path.md`, `fast_path_quiet.md`, exactly as `benchmarks/runtime.py` writes them), `gate_overhead.md` (from
`gate_overhead.json`, `gate_overhead_before_batched_sampler.json` and the paper's Table 3), `scaling_cpu.md` (from
`scaling_cpu.json`) and `would_prune.md` (from `results/would_prune/mnist-mlp-seed0.json`). `--check` writes nothing
and exits 1 naming every page that differs from what the records give.
"""
import argparse, json, statistics, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

def _read(path, what='benchmark record'):
    from bmrs.files import read_json
    return read_json(path, what)

def runtime_page(rec:dict) -> str:
    "A runtime benchmark's page, byte for byte as `benchmarks/runtime.py` writes it."
    from runtime import page
    return page(rec)

def _overhead_rows(rec:dict) -> dict:
    return {(r['network'].split(' ')[0], r['batch']): r for r in rec['rows']}

def gate_overhead_page(now:dict, before:dict) -> str:
    "Gate overhead in training: one Adam step with and without BMRS_N gates, next to the measurement before the batched sampler and the paper's Table 3 ratio."
    from bmrs.report import PAPER_TABLE3
    b = _overhead_rows(before)
    lines = ['| network | batch | no gates | BMRS_N gates | ratio | before the batched sampler | paper, Table 3 (GPU) |',
             '|---|---|---|---|---|---|---|']
    names = {'mlp': 'MLP 1024 → 8 × 100 → 10', 'lenet5': 'LeNet5 (c = 1)'}
    for (net, bs), r in _overhead_rows(now).items():
        paper = PAPER_TABLE3[(net, 'bmrs_n')]['mnist'][0]/PAPER_TABLE3[(net, 'none')]['mnist'][0] if bs == 32 else None
        old = b.get((net, bs)); old_ratio = '' if old is None else f"{old['gated_ms']/old['plain_ms']:.1f}×"
        lines.append(f"| {names.get(net, net)} | {bs} | {r['plain_ms']:.2f} ms | {r['gated_ms']:.2f} ms | {r['gated_ms']/r['plain_ms']:.1f}× | "
                     f"{old_ratio} | {'' if paper is None else f'{paper:.1f}×'} |")
    th = lambda r: r['machine'].get('threads')
    return ('# Cost of the gates in training\n\n'
            'One Adam step (CE + KL, forward + backward + update), median of '
            f"{now['repeats']} interleaved steps after warm-up, {th(now)} torch thread(s), on `{now['machine']['platform']}` "
            f"(torch {now['machine']['torch']}). Ratios are what compares; single numbers depend on the machine's load.\n\n"
            + '\n'.join(lines) + '\n\n'
            f"Made by: `{now['command']}`. The 'before' column: `{before['command']}` ({th(before)} threads), before the batched "
            "sampler (committed as `gate_overhead.json` in d2ced8b, kept as `gate_overhead_before_batched_sampler.json`); both scripts are now part of `benchmarks/runtime.py` (`--methods none bmrs_n --batch_size 32 128`). "
            "The paper's ratio is its Table 3's MNIST training time with BMRS_N over None's (a Titan X GPU, batch 32).\n")

def scaling_page(rec:dict) -> str:
    "Data-parallel scaling: samples/s of the training loop with 1, 2, … processes."
    s = rec['setup']
    lines = ['| processes | samples/s (median) | ratio to 1 process | samples/s (each round) |', '|---|---|---|---|']
    for r in rec['scaling']:
        lines.append(f"| {r['nprocs']} | {r['samples_per_s_median']:.0f} | {r['ratio_to_first']:.2f}× | "
                     + ', '.join(f'{x:.0f}' for x in r['samples_per_s']) + ' |')
    la = lambda k: ' / '.join(f'{x:.1f}' for x in rec['machine'][k])
    return ('# Data-parallel scaling on a CPU\n\n'
            f"Gated {s['network'].upper()} ({s['gate']}), global batch {s['batch_size']}, {s['steps']} timed steps after {s['warmup']} warm-up, "
            f"{s['threads_per_process']} thread per process, backend {s['backend']}, on `{rec['machine']['platform']}` "
            f"({rec['machine']['cpu_count']} cores), {rec['date']}. Load average before / after: {la('load_average_before')} → "
            f"{la('load_average_after')}.\n\n" + '\n'.join(lines) + '\n\n'
            f"Made by: `{rec['command']}`.\n")

WOULD = {'bmrs_n': 'BMRS_N (Eq. 8)', 'bmrs_n_release': 'BMRS_N (release, +½ log 2π)', 'bmrs_u8': 'BMRS_U-8', 'bmrs_u4': 'BMRS_U-4',
         'snr': 'SNR > 1', 'etheta': 'E[θ] > 0.1'}

def would_prune_page(rec:dict) -> str:
    "Which units each criterion would prune on one BMRS_N-trained MNIST MLP: the last epoch, then every epoch."
    last = rec['epochs'][-1]
    head = '| criterion | ' + ' | '.join(WOULD.values()) + ' |\n|---|' + '---|'*len(WOULD) + '\n'
    per = ['| epoch | val. acc. % | ' + ' | '.join(WOULD.values()) + ' | median μ | median log σ |', '|---|---|' + '---|'*len(WOULD) + '---|---|']
    for e in rec['epochs']:
        per.append(f"| {e['epoch']} | {e['val_top1']:.2f} | " + ' | '.join(f"{e['would_prune'][k]:.1f}" for k in WOULD)
                   + f" | {e['mu_median']:.2f} | {e['logsigma_median']:.2f} |")
    env = rec['environment']
    return ('# Which units would each criterion prune?\n\n'
            "The paper's MNIST MLP (1024 → 7 × 100 → 10, Tanh, BMRS_N gates with Eq. 8, batch 128, Adam lr 8.5e-4, KL `mean`, "
            f"compression after every epoch), one seed. After epoch {last['epoch']} (test accuracy {rec['test_top1']:.2f} %), the share "
            'of units each criterion would prune on the same network:\n\n'
            + head + '| units that would be pruned | ' + ' | '.join(f"{last['would_prune'][k]:.1f} %" for k in WOULD) + ' |\n\n'
            f"Made by: `{rec['command']}` on `{env['platform']}` (torch {env['torch']}, {env['torch_threads']} thread, commit "
            f"{env['git_commit'][:7]}); median {statistics.median(e['seconds'] for e in rec['epochs']):.1f} s per epoch. "
            "Why Eq. 8 prunes nothing: `nbs/10c_ablations.ipynb`.\n\nEvery epoch (% of units):\n\n" + '\n'.join(per) + '\n')

def pages(results) -> dict:
    "{page path: text} of every benchmark page the records under `results` give."
    results = Path(results); bench = results/'benchmarks'; out = {}
    for p in sorted(bench.glob('*.json')):
        rec = _read(p)
        if isinstance(rec, dict) and rec.get('kind') == 'runtime_benchmark': out[p.with_suffix('.md')] = runtime_page(rec)
    out[bench/'gate_overhead.md'] = gate_overhead_page(_read(bench/'gate_overhead.json'), _read(bench/'gate_overhead_before_batched_sampler.json'))
    out[bench/'scaling_cpu.md'] = scaling_page(_read(bench/'scaling_cpu.json'))
    out[bench/'would_prune.md'] = would_prune_page(_read(results/'would_prune'/'mnist-mlp-seed0.json', 'would-prune record'))
    return out

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--results', default=str(HERE.parent/'results'), help='the results folder (default: the repository\'s)')
    p.add_argument('--check', action='store_true', help='write nothing; exit 1 if a page differs from what its records give')
    a = p.parse_args(argv)
    from bmrs.files import FileError, write_atomic
    try: pg = pages(a.results)
    except (FileError, KeyError, TypeError) as e:
        print(f"pages: {e if isinstance(e, FileError) else f'a record under {a.results} lacks {e}'}", file=sys.stderr); return 2
    if a.check:
        stale = [str(k) for k, v in pg.items() if not k.is_file() or k.read_text(encoding='utf-8') != v]
        for s in stale: print(f"pages: {s} differs from its records (run python benchmarks/pages.py)", file=sys.stderr)
        return 1 if stale else 0
    for k, v in pg.items(): write_atomic(k, v); print(f"wrote {k}")
    return 0

if __name__ == '__main__': sys.exit(main())

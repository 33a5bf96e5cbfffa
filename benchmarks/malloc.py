"""glibc's malloc as it comes against keeping freed memory (`mallopt`: mmap threshold 32 MiB, trim threshold 1 GiB, as
PyTorch's CPU tuning guide gets by swapping in jemalloc or tcmalloc): training-step time and minor page faults per
step, the two settings in two processes started together (one per core), so machine noise hits both alike. Issue 19:
a measurement of an alternative bmrs does not adopt (see `results/benchmarks/malloc.md`).

    python benchmarks/malloc.py [--reps 200] [--warmup 5] [--out results/benchmarks/malloc.json] [--note TEXT]

Cases (`benchmarks/runtime.py`'s networks, MNIST shape, gates as initialised, fast sampler, one thread, one fixed
random batch): the gated LeNet5 and MLP at batch 128, each alone in its process (as `bmrs-train` runs one network);
and the plain and the gated LeNet5 timed call by call in one process (as `runtime.py` and `pool.py` interleave their
variants). `--worker` runs one side and prints its JSON.
"""
import argparse, ctypes, json, os, resource, subprocess, sys, time
from pathlib import Path
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path: sys.path.insert(0, str(REPO))
from _record import write_record

CASES = {'lenet5 alone': ['lenet5'], 'mlp alone': ['mlp'], 'lenet5 plain + gated interleaved': ['lenet5', 'plain_lenet5']}


def keep_freed_memory():
    "glibc mallopt: M_MMAP_THRESHOLD (-3) 32 MiB, M_TRIM_THRESHOLD (-1) 1 GiB; SystemExit where glibc refuses."
    libc = ctypes.CDLL(None)
    if libc.mallopt(-3, 32*2**20) != 1 or libc.mallopt(-1, 2**30) != 1: raise SystemExit("malloc.py: glibc's mallopt refused the thresholds")


def worker(mode:str, case:str, reps:int, warmup:int) -> dict:
    "{name: (median ms, minor faults per step)} of `case`'s training steps with malloc `mode` ('default' or 'keep')."
    if mode == 'keep': keep_freed_memory()
    torch.set_num_threads(1)
    sys.path.insert(0, str(REPO/'benchmarks'))
    from runtime import make_network, step_fns
    fns = {}
    for name in CASES[case]:
        plain = name.startswith('plain_')
        model, shape, n_cls = make_network(name.removeprefix('plain_'), 'mnist', 'none' if plain else 'bmrs_n')
        fns[name] = step_fns(model, shape, n_cls, 128, torch.device('cpu'))[0]
    for _ in range(warmup):
        for f in fns.values(): f()
    ts, faults = {k: [] for k in fns}, 0
    for _ in range(reps):
        for k, f in fns.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t)
            faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    return {k: dict(median_ms=1e3*sorted(v)[len(v)//2], faults_per_step=faults/(reps*len(fns))) for k, v in ts.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--reps', type=int, default=200)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--note', default=None)
    p.add_argument('--out', default=None)
    p.add_argument('--worker', nargs=2, metavar=('MODE', 'CASE'), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.reps < 1 or a.warmup < 0: raise SystemExit(f"malloc.py: --reps must be at least 1 and --warmup at least 0, got {a.reps}, {a.warmup}")
    if a.worker:
        print(json.dumps(worker(*a.worker, a.reps, a.warmup))); return
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    rows = []
    for case in CASES:
        procs = {m: subprocess.Popen([sys.executable, __file__, '--worker', m, case, '--reps', str(a.reps), '--warmup', str(a.warmup)],
                                     stdout=subprocess.PIPE, text=True, env=env) for m in ('default', 'keep')}
        res = {m: json.loads(pr.communicate()[0]) for m, pr in procs.items()}
        if any(pr.returncode for pr in procs.values()): raise SystemExit(f"malloc.py: a worker of case {case!r} failed")
        for name in CASES[case]:
            rows.append(dict(case=case, network=name, **{f'{m}_{k}': v for m in res for k, v in res[m][name].items()}))
            print(rows[-1], flush=True)
    rec = write_record('benchmarks/malloc.py', argv, 1, a.out, dict(kind='malloc', reps=a.reps, warmup=a.warmup, note=a.note, rows=rows), markdown)
    print(markdown(rec))
    return rec


def markdown(rec) -> str:
    out = ["A training step (batch 128, one thread) with glibc's malloc as it comes against keeping freed memory, the two in "
           "processes started together; median ms and minor page faults per step.", "",
           "| case | network | default ms | keep ms | default / keep | default faults / step | keep faults / step |",
           "|---|---|---|---|---|---|---|"]
    for r in rec['rows']:
        out.append(f"| {r['case']} | {r['network'].replace('plain_', 'plain ')} | {r['default_median_ms']:.2f} | {r['keep_median_ms']:.2f} | "
                   f"{r['default_median_ms']/r['keep_median_ms']:.2f}× | {r['default_faults_per_step']:.0f} | {r['keep_faults_per_step']:.0f} |")
    m = rec['machine']
    out += ["", f"`{rec['command']}`, {rec['date']}, {m['platform']}, torch {m['torch']}, {rec['reps']} steps after {rec['warmup']} warm-up."]
    if rec.get('note'): out += ["", rec['note']]
    return '\n'.join(out) + '\n'

if __name__ == '__main__': main()

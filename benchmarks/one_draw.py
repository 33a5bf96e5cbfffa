"""What a user's own training loop gains from `bmrs.models.one_draw` (issue 19): the builders' networks now draw the
noise of all their gates in one pass per step (`fuse_gates`), where before each gate drew its own unless the caller
fused them (`bmrs-train` always did). Side by side in one process, one thread:

    python benchmarks/one_draw.py [--batch_size 32 128] [--reps 200] [--warmup 20] [--threads 1] [--out results/fast_path_cpu/one_draw/one_draw.json]

Per network (the MNIST MLP, 7 × 100, and LeNet5, 1×32×32 inputs), three networks built from the same seed, so with the
same weights: plain (no gates), BMRS_N gated as the builder now returns it (one draw), and the same with
`unfuse_gates` (one draw per gate, as the builders returned it before). A training step as `benchmarks/runtime.py`
times it (one fixed standard-normal batch; cross-entropy + the gates' mean KL; backward; Adam as `bmrs.train` makes
it), the three interleaved step by step after a warm-up (`bmrs.utils.interleaved_ms`), medians.
"""
import argparse, os, sys
from pathlib import Path
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path: sys.path.insert(0, str(REPO))
from bmrs.models import build_model
from bmrs.layers import unfuse_gates
from bmrs.utils import interleaved_ms
from _record import write_record
from runtime import step_fns

CONFIG = dict(mlp=dict(n_layers=7, hidden_dim=100), lenet5={})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch_size', type=int, nargs='+', default=[32, 128])
    p.add_argument('--reps', type=int, default=200)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default=None, help='JSON record to write (default: none)')
    a = p.parse_args(argv)
    for k in ('reps', 'warmup', 'threads'):
        if getattr(a, k) < 1: raise SystemExit(f"one_draw.py: --{k} must be at least 1, got {getattr(a, k)}")
    if min(a.batch_size) < 1: raise SystemExit(f"one_draw.py: --batch_size must be at least 1, got {min(a.batch_size)}")
    torch.set_num_threads(a.threads)
    rows = []
    for net, kw in CONFIG.items():
        def make(gate):
            torch.manual_seed(0); return build_model(net, 1, 32, 10, gate=gate, **kw)
        plain, fused, unfused = make(None), make('bmrs_n'), unfuse_gates(make('bmrs_n'))
        assert fused._bmrs_fused is not None and unfused._bmrs_fused is None
        for b in a.batch_size:   # runtime.py's training step, on the same seeded batch for all three
            ms = interleaved_ms({k: step_fns(m, (1, 32, 32), 10, b, torch.device('cpu'), seed=1)[0]
                                 for k, m in dict(plain=plain, one_draw=fused, per_gate=unfused).items()}, a.warmup, a.reps)
            row = dict(network=net, batch_size=b, **{f'{k}_ms': round(v, 4) for k, v in ms.items()},
                       per_gate_over_one_draw=round(ms['per_gate']/ms['one_draw'], 3),
                       gated_over_plain_one_draw=round(ms['one_draw']/ms['plain'], 3),
                       gated_over_plain_per_gate=round(ms['per_gate']/ms['plain'], 3))
            rows.append(row); print(row, flush=True)
    write_record('benchmarks/one_draw.py', argv, a.threads, a.out, dict(kind='one_draw', rows=rows))


if __name__ == '__main__': main()

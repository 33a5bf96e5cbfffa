"""LeNet5's 2×2 max pooling on CPU: torch's `max_pool2d` kernel (`nn.MaxPool2d(2)`) against `bmrs.models.MaxPool2x2`
(the same values and gradients from four strided maxima and `max_pool2d`'s own backward), side by side (issue 19: a
Table 1 cell's epoch).

    python benchmarks/pool.py [--dataset mnist] [--batch_size 128] [--reps 200] [--eval_reps 7] [--threads 1]
                              [--out results/fast_path_cpu/pool/pool.json]
    python benchmarks/pool.py --sizes [--reps 300] [--out results/fast_path_cpu/pool/pool_sizes.json]

Four LeNet5s per dataset — plain and gated (BMRS_N, the fast sampler, Adam as `bmrs.train` makes it), each with either
pool — are built from the same seed, so each pair has the same weights. Timed, with the configurations interleaved step
by step (machine noise hits them alike) after a warm-up, medians kept:
- a training step (forward, cross-entropy + the gates' mean KL, backward, Adam) on the seeded training split's
  successive batches of `--batch_size` (`bmrs.data.load`, `$BMRS_DATA_ROOT`; every configuration sees the same batch at
  each repetition), and on one fixed batch of standard-normal inputs as `benchmarks/runtime.py` times;
- one evaluation of the validation split (`bmrs.utils.evaluate`, batches of 512, eval mode).
Before timing it checks what it compares: after one step on the same batch, each pair's parameters are bit for bit
equal, and evaluation gives the same top-1.

`--sizes` times the pooling op alone instead, on ReLU'd standard-normal inputs of LeNet5's first pool shape
(n, 6, 28, 28) for n from 1 to 64 and (128, 16, 10, 10): torch's kernel against `MaxPool2x2`'s fast path (forced at
every size), without gradient (inference mode) and forward + backward. Where the fast path starts to pay is where
`bmrs.models.POOL_FAST_MIN` and `POOL_FAST_MIN_GRAD` put it to use.
"""
import argparse, os, sys
from pathlib import Path
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path: sys.path.insert(0, str(REPO))
from bmrs.models import build_model, MaxPool2x2
from bmrs.layers import gates, model_kl
from bmrs.train import make_adam
from bmrs.utils import evaluate, interleaved_ms
from bmrs import data as bdata
from _record import write_record


def network(gate, pool, splits, seed=0):
    "LeNet5 for `splits`' shape, gated with `gate` (None: plain), its pools torch's (`pool='torch'`) or `MaxPool2x2`."
    torch.manual_seed(seed)
    m = build_model('lenet5', in_channels=splits.in_channels, image_size=splits.image_size, n_classes=splits.n_classes, gate=gate)
    if pool == 'torch':
        for i, mod in enumerate(m):
            if isinstance(mod, MaxPool2x2): m[i] = nn.MaxPool2d(2)
    assert sum(isinstance(mod, MaxPool2x2) for mod in m) == (2 if pool == 'bmrs' else 0)
    return m


def step_fn(model, batches):
    "One training step on the next of `batches` (a callable giving (x, y) for the repetition number)."
    opt, gated, state = make_adam(model, 1e-3), bool(gates(model)), dict(r=0)
    def step():
        x, y = batches(state['r']); state['r'] += 1
        model.train()
        loss = F.cross_entropy(model(x), y)
        if gated: loss = loss + model_kl(model, 'mean').to(loss.dtype)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return step


SIZES = [(n, 6, 28, 28) for n in (1, 2, 3, 4, 8, 10, 12, 14, 16, 20, 32, 64)] + [(128, 16, 10, 10)]

def op_sizes(reps:int) -> list:
    "Rows: torch's pool and MaxPool2x2's fast path (forced) at each of `SIZES`, without and with gradient, interleaved."
    import bmrs.models as bm
    rows, saved = [], (bm.POOL_FAST_MIN, bm.POOL_FAST_MIN_GRAD)
    try:
        bm.POOL_FAST_MIN = bm.POOL_FAST_MIN_GRAD = 0
        for shape in SIZES:
            x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).relu()
            gy = torch.randn(*shape[:2], shape[2]//2, shape[3]//2, generator=torch.Generator().manual_seed(1))
            def infer(m):
                def f():
                    with torch.inference_mode(): m(x)
                return f
            def train(m):
                xx = x.clone().requires_grad_()
                return lambda: m(xx).backward(gy)
            fns = {(k, w): f(m) for k, m in (('torch', nn.MaxPool2d(2)), ('bmrs', MaxPool2x2())) for w, f in (('inference', infer), ('forward+backward', train))}
            ms = interleaved_ms(fns, 20, reps)
            rows += [dict(what='pool op', shape=list(shape), elements=x.numel(), mode=w, pool=k, ms=v) for (k, w), v in ms.items()]
            print(shape, {f'{k}/{w}': round(v, 4) for (k, w), v in ms.items()}, flush=True)
    finally: bm.POOL_FAST_MIN, bm.POOL_FAST_MIN_GRAD = saved
    return rows

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', action='store_true', help="time the pooling op alone at several input sizes")
    p.add_argument('--dataset', default='mnist')
    p.add_argument('--batch_size', type=int, default=128)
    p.add_argument('--reps', type=int, default=200)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--eval_reps', type=int, default=7)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default=None)
    a = p.parse_args(argv)
    for k in ('batch_size', 'reps', 'eval_reps', 'threads'):
        if getattr(a, k) < 1: raise SystemExit(f"pool.py: --{k} must be at least 1, got {getattr(a, k)}")
    torch.set_num_threads(a.threads)
    if a.sizes: return write_record('benchmarks/pool.py', argv, a.threads, a.out, dict(kind='pool_sizes', reps=a.reps, rows=op_sizes(a.reps)))
    splits = bdata.load(a.dataset, os.environ.get('BMRS_DATA_ROOT', str(REPO/'data')), split_seed=1000)
    X, Y, bs = splits.train.x, splits.train.y, a.batch_size
    n_b = len(X)//bs
    real = lambda r: (X[(r % n_b)*bs:(r % n_b + 1)*bs], Y[(r % n_b)*bs:(r % n_b + 1)*bs])
    g = torch.Generator().manual_seed(0)
    xr, yr = torch.randn(bs, *X.shape[1:], generator=g), torch.randint(0, splits.n_classes, (bs,), generator=g)
    rand = lambda r: (xr, yr)
    kinds = {'plain': None, 'BMRS_N': 'bmrs_n'}
    # the pairs compute the same: one step on the same batch leaves bit-for-bit equal parameters; the same top-1
    for kind, gate in kinds.items():
        ms = [network(gate, pool, splits) for pool in ('torch', 'bmrs')]
        for m in ms: torch.manual_seed(1); step_fn(m, real)()
        if not all(torch.equal(u, v) for u, v in zip(*(m.state_dict().values() for m in ms))):
            raise SystemExit(f"pool.py: {kind} LeNet5 with torch's pool and with MaxPool2x2 differ after one step")
        tops = [evaluate(m, splits.val, 'cpu')['top1'] for m in ms]
        if tops[0] != tops[1]: raise SystemExit(f"pool.py: {kind} LeNet5 evaluates to {tops[0]} and {tops[1]}")
    rows = []
    for data, batches in (('real', real), ('random', rand)):
        fns = {(kind, pool): step_fn(network(gate, pool, splits), batches) for kind, gate in kinds.items() for pool in ('torch', 'bmrs')}
        ms = interleaved_ms(fns, a.warmup, a.reps)
        rows += [dict(what='train step', inputs=data, network=kind, pool=pool, ms=v) for (kind, pool), v in ms.items()]
        print(data, {f'{k}/{p}': round(v, 2) for (k, p), v in ms.items()}, flush=True)
    evs = {(kind, pool): (lambda m=network(gate, pool, splits).eval(): evaluate(m, splits.val, 'cpu'))
           for kind, gate in kinds.items() for pool in ('torch', 'bmrs')}
    ms = interleaved_ms(evs, 1, a.eval_reps)
    rows += [dict(what='evaluation', inputs='real', network=kind, pool=pool, ms=v, n_examples=len(splits.val)) for (kind, pool), v in ms.items()]
    print('evaluation', {f'{k}/{p}': round(v, 1) for (k, p), v in ms.items()}, flush=True)
    return write_record('benchmarks/pool.py', argv, a.threads, a.out,
                        dict(kind='pool', dataset=a.dataset, batch_size=bs, reps=a.reps, eval_reps=a.eval_reps, rows=rows))

if __name__ == '__main__': main()

"""Tables 3 (and the layout of 4) of the paper on this machine: milliseconds per training step and per inference forward
pass, batch 32, of the MLP and LeNet5 without gates (None) and with E[θ], SNR, BMRS_N and BMRS_U gates.

    python benchmarks/runtime.py [--reps 1000] [--warmup 50] [--threads 1] [--device cpu]
                                 [--networks mlp lenet5] [--datasets mnist] [--methods none etheta snr bmrs_n bmrs_u]
                                 [--pruned 0.76] [--compact] [--out results/benchmarks/runtime.json] [--md results/benchmarks/runtime.md] [--note TEXT]

What is timed, per (network, dataset, method), on one fixed random batch of the dataset's shape:
- train: one training step as in `bmrs.train.train_epoch` — forward in training mode (θ sampled), cross-entropy + the
  gates' KL (`kl_averaging='mean'`, as the grids), backward, Adam update (`bmrs.train.make_adam`, as training: with the
  fast sampler the gates' parameters are updated by torch's fused Adam, the network's weights by its default Adam);
- inference: one forward pass in eval mode under `torch.no_grad()`, before any pruning (every mask is 1), of a copy
  of the network that is never trained: its gates compute E[θ] once and cache it (`NoiseGate.expected`), as a trained
  network being evaluated does. (Timing inference on the network being trained would recompute E[θ] after every
  Adam step; the release recomputed it in every forward pass.)
Each configuration is warmed up, then the configurations are interleaved repetition by repetition (so machine noise
hits them alike) and each call is timed with `time.perf_counter` (after `torch.cuda.synchronize()` on a GPU). The JSON
keeps median, mean, standard deviation and minimum per configuration; the Markdown table (bmrs.report's
`runtime_benchmark_markdown`) shows medians next to the paper's numbers, which are means over 1000 passes measured on
a GPU (NVIDIA Titan X), so compare the gated/None ratios rather than the milliseconds.

Networks are built as for training (`bmrs.train.build` semantics: `bmrs.models.build_model` with the dataset's shape
and the paper's MLP configuration per dataset). MNIST and Fashion-MNIST images are 1×32×32 here, as in the data
pipeline and the authors' code (resized from 28×28; the MLP's input is 1024); `--image_size 28` times 28×28 inputs.

Several batch sizes (`--batch_size 32 128`) time every configuration at each; the Table 3 layout uses the first, and
the Markdown adds the gates' training overhead (gated / None train step) at every batch size. The cost of the gates
in training (what `gate_overhead.py` measured before it was folded in here):

    python benchmarks/runtime.py --reps 100 --threads 1 --methods none bmrs_n --batch_size 32 128 --out results/benchmarks/gate_overhead_runtime.json

Gated networks draw their noise as training does by default: the fast sampler (`bmrs.sampler`), all gates of a network
in one draw (`bmrs.layers.fuse_gates`); `--sampler exact` times the float64 path the committed results were trained
with (`--unfused` leaves each gate to draw its own noise). `--reduced 1 3 22 8` also times, at `--reduced_batch` (64),
the plain LeNet5 against LeNet5 reduced to that many units per gate (`bmrs.reduce.reduce` of a gated LeNet5 with random
units kept), with the default kernels and with the kernels `bmrs.utils.fastest_kernels` picks for it, interleaved.

Gates start as initialised (μ = 0, log σ = −5, nothing pruned). Late in training most units are pruned and their
posteriors wide, which changes what the gates cost (the fused draw skips pruned units; their KL is still computed):
`--pruned 0.76` puts every gate in such a state — that fraction of its units pruned (mask 0) with μ uniform in
[−15, −8] and log σ in [1.5, 3], the others kept with μ in [−1, 0] and log σ in [−4, −2], drawn from `--seed`.
`--compact` also times every gated MLP and LeNet5 through `bmrs.compact.Compact` (as `bmrs-train --compact`: each
layer computes only its kept units), interleaved with the rest; with `--pruned` that is the state it pays in.
"""
import argparse, copy, json, os, platform, statistics, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path: sys.path.insert(0, str(REPO))
from bmrs.models import build_model, n_params
from bmrs.layers import gates, model_kl, fuse_gates, unfuse_gates, set_sampler
from bmrs.train import make_adam, COMPACT
from bmrs.compact import Compact
from bmrs.methods import RUNTIME_METHODS, get_method
from bmrs.data import dataset_info

NETWORKS = ('mlp', 'lenet5')
DATASETS = ('mnist', 'fashion_mnist', 'cifar10')
# the criteria of the runtime table (Table 3), once each: timing does not depend on BMRS_U's p1
METHODS = tuple(dict.fromkeys(get_method(m).criterion or 'none' for m in RUNTIME_METHODS))
MLP_CONFIG = dict(mnist=(7, 100), fashion_mnist=(1, 150), cifar10=(5, 150))   # (n_layers, hidden_dim), 11_explanations, “Hyperparameters per network and dataset”


def cpu_name() -> str:
    "The CPU model from /proc/cpuinfo (Linux), else platform.processor()."
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or 'unknown'


def make_network(network:str, dataset:str, method:str, image_size:int|None=None, sampler:str='fast', fused:bool=True):
    """The network for `dataset`'s shape, plain (`method='none'`) or gated with criterion `method` (noise drawn by
    `sampler`, in one draw per step if `fused`); and the input shape."""
    info = dataset_info(dataset)
    size = image_size or info.image_size
    kw = {}
    if network == 'mlp': kw = dict(zip(('n_layers', 'hidden_dim'), MLP_CONFIG[dataset]))
    model = build_model(network, in_channels=info.in_channels, image_size=size, n_classes=info.n_classes,
                        gate=None if method == 'none' else method, **kw)
    if gates(model):
        set_sampler(model, sampler)
        fuse_gates(model) if fused else unfuse_gates(model)   # the builders fuse fast gates themselves (bmrs.models.one_draw)
    return model, (info.in_channels, size, size), info.n_classes


def step_fns(model, shape, n_classes, batch_size, device, seed=0, sampler:str='fast', compact:bool|dict=False):
    """(train step, inference forward) closures on one fixed random batch; inference runs on an untrained copy; Adam as
    training makes it; `compact`: both through `bmrs.compact.Compact` (the kept units only, as `bmrs-train --compact`;
    a dict: `Compact`'s options)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, *shape, generator=g).to(device)
    y = torch.randint(0, n_classes, (batch_size,), generator=g).to(device)
    model = model.to(device)
    frozen = copy.deepcopy(model).eval()
    opt = make_adam(model, 1e-3, fuse_gates=sampler == 'fast')   # as `bmrs.train.make_optimizer`: the fast path's gates in one fused Adam group
    gated = bool(gates(model))
    kw = compact if isinstance(compact, dict) else {}
    fwd, frozen = (Compact(model, **kw), Compact(frozen, **kw)) if compact is not False else (model, frozen)
    def train():
        model.train()
        loss = F.cross_entropy(fwd(x), y)
        if gated: loss = loss + model_kl(model, 'mean').to(loss.dtype)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    def infer():
        with torch.no_grad(): frozen(x)
    return train, infer


def timed(fn, device) -> float:
    "Milliseconds of one call of `fn` (synchronised on a GPU)."
    if device.type == 'cuda': torch.cuda.synchronize(device)
    t = time.perf_counter(); fn()
    if device.type == 'cuda': torch.cuda.synchronize(device)
    return (time.perf_counter() - t)*1e3


def stats(ts) -> dict:
    return dict(median_ms=statistics.median(ts), mean_ms=statistics.fmean(ts), std_ms=statistics.stdev(ts) if len(ts) > 1 else 0.,
                min_ms=min(ts))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reps', type=int, default=1000, help='timed repetitions per configuration (the paper: 1000)')
    p.add_argument('--warmup', type=int, default=50, help='untimed calls per configuration first')
    p.add_argument('--threads', type=int, default=1, help='torch.set_num_threads (CPU)')
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    p.add_argument('--batch_size', type=int, nargs='+', default=[32], help='batch size(s); the Table 3 layout uses the first')
    p.add_argument('--networks', nargs='+', default=list(NETWORKS), choices=NETWORKS)
    p.add_argument('--datasets', nargs='+', default=['mnist'], choices=DATASETS)
    p.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    p.add_argument('--image_size', type=int, default=None, help='override the input height = width (default: the data pipeline\'s, 32)')
    p.add_argument('--out', default=str(REPO/'results'/'benchmarks'/'runtime.json'), help='JSON to write')
    p.add_argument('--md', default=None, help='Markdown table to write (default: the JSON path with .md)')
    p.add_argument('--note', default=None, help='free text stored with the results (e.g. what else ran on the machine)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--sampler', default='fast', choices=('fast', 'exact'), help="gates' training noise: the fast sampler or the exact float64 path")
    p.add_argument('--unfused', action='store_true', help='each gate draws its own noise (default: one draw for all gates, fuse_gates)')
    p.add_argument('--reduced', type=int, nargs=4, default=None, metavar='K',
                   help='also time LeNet5 reduced to K1..K4 units per gate against the plain LeNet5 (e.g. 1 3 22 8)')
    p.add_argument('--reduced_batch', type=int, nargs='+', default=[64], help='batch size(s) of the reduced-network timing')
    p.add_argument('--pruned', type=float, default=0., help='late-training state: this fraction of every gate\'s units pruned and wide (0: as initialised)')
    p.add_argument('--compact', action='store_true', help='also time each gated MLP / LeNet5 through bmrs.compact.Compact (the kept units only), interleaved')
    return p


def late_state(model, fraction:float, seed:int=0):
    """Put every gate of `model` in a late-training state: `fraction` of its units (rounded) pruned with wide posteriors
    (mu in [-15, -8], log sigma in [1.5, 3]), the others kept (mu in [-1, 0], log sigma in [-4, -2])."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for gate in gates(model):
            n = gate.n_units; k = int(round(fraction*n))
            idx = torch.randperm(n, generator=g)
            r = lambda m, lo, hi: (lo + (hi - lo)*torch.rand(m, generator=g, dtype=torch.float64)).to(gate.mu)
            gate.mask.fill_(1); gate.mask[idx[:k]] = 0
            gate.mu[idx[:k]], gate.logsigma[idx[:k]] = r(k, -15, -8), r(k, 1.5, 3)
            gate.mu[idx[k:]], gate.logsigma[idx[k:]] = r(n - k, -1, 0), r(n - k, -4, -2)
    return model


def reduced_lenet5(kept, dataset:str, seed:int=0):
    "(plain LeNet5, LeNet5 reduced to `kept` units per gate, input shape): random units kept, E[theta] folded in."
    from bmrs.reduce import reduce
    gated, shape, _ = make_network('lenet5', dataset, 'bmrs_n', fused=False)
    g = torch.Generator().manual_seed(seed)
    for gate, k in zip(gates(gated), kept):
        if not 1 <= k <= gate.n_units: raise SystemExit(f"--reduced: a gate of {gate.n_units} units cannot keep {k}")
        with torch.no_grad(): gate.mask.zero_(); gate.mask[torch.randperm(gate.n_units, generator=g)[:k]] = 1
    x = torch.randn(4, *shape, generator=g)
    return make_network('lenet5', dataset, 'none')[0], reduce(gated.eval(), x), shape


def time_reduced(kept, dataset, batches, reps, warmup, device, seed=0) -> list:
    "Rows: plain vs reduced LeNet5 inference (default kernels and the picked ones) at each batch size, interleaved."
    from bmrs.utils import fastest_kernels, interleaved_ms
    plain, small, shape = reduced_lenet5(kept, dataset, seed)
    plain, small = plain.to(device).eval(), small.to(device).eval()
    rows = []
    for b in batches:
        x = torch.randn(b, *shape, generator=torch.Generator().manual_seed(seed)).to(device)
        picked = fastest_kernels(small, x, n_warmup=warmup, n_repeat=max(5, reps//5))
        def call(m):
            def f():
                with torch.inference_mode(): m(x)
            return f
        ms = interleaved_ms(dict(plain=call(plain), reduced=call(small), reduced_picked=call(picked)), warmup, reps, device)
        rows.append(dict(network='lenet5', dataset=dataset, kept=list(kept), batch_size=b, plain_ms=ms['plain'],
                         reduced_ms=ms['reduced'], reduced_picked_ms=ms['reduced_picked'], picked=picked.extra_repr(),
                         picked_timings=picked.timings, n_params_plain=n_params(plain), n_params_reduced=n_params(small),
                         speedup=ms['plain']/ms['reduced'], speedup_picked=ms['plain']/ms['reduced_picked']))
    return rows


def compact_markdown(rows) -> str:
    "The compact forward against the masked network (and the plain one, where timed) as a Markdown table."
    plain = {(r['network'], r['dataset'], r['batch_size']): r for r in rows if r['method'] == 'none'}
    out = ['', '**The compact forward** (`bmrs.compact.Compact`, `bmrs-train --compact`: the kept units only) against the masked '
           'network, medians:', '', '| Network | Method | Batch | Pruned units | Train ms: masked | compact | speed-up | plain | '
           'Inference ms: masked | compact | speed-up |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        if 'compact_train_median_ms' not in r: continue
        p = plain.get((r['network'], r['dataset'], r['batch_size']))
        pl = f"{p['train_median_ms']:.3f}" if p else '–'
        out.append(f"| {r['network']} | {r['method']} | {r['batch_size']} | {r['n_pruned']} of {r['n_units']} | {r['train_median_ms']:.3f} | "
                   f"{r['compact_train_median_ms']:.3f} | {r['train_median_ms']/r['compact_train_median_ms']:.2f}× | {pl} | "
                   f"{r['infer_median_ms']:.3f} | {r['compact_infer_median_ms']:.3f} | {r['infer_median_ms']/r['compact_infer_median_ms']:.2f}× |")
    return '\n'.join(out) + '\n'


def reduced_markdown(rows) -> str:
    "The reduced-network timing as a Markdown table."
    out = ['', '**Reduced LeNet5 against the plain one** (inference, medians; kernels picked by `fastest_kernels`):', '',
           '| Kept units | Batch | Plain ms | Reduced ms | Speed-up | Reduced ms (picked kernels) | Speed-up | Picked |',
           '|---|---|---|---|---|---|---|---|']
    for r in rows:
        out.append(f"| {' / '.join(map(str, r['kept']))} | {r['batch_size']} | {r['plain_ms']:.3f} | {r['reduced_ms']:.3f} | "
                   f"{r['speedup']:.2f}× | {r['reduced_picked_ms']:.3f} | {r['speedup_picked']:.2f}× | {r['picked']} |")
    return '\n'.join(out) + '\n'



def page(rec:dict) -> str:
    "The Markdown page of a runtime record: what `main` writes, and what `benchmarks/pages.py` remakes from the JSON."
    from bmrs.report import runtime_benchmark_markdown
    md, pruned = runtime_benchmark_markdown(rec), rec['settings'].get('pruned')
    if pruned: md += (f"\nGates in a late-training state (`--pruned {pruned:g}`): {pruned:.0%} of every gate's units pruned, "
                      "with μ in [−15, −8] and log σ in [1.5, 3]; the others kept, μ in [−1, 0], log σ in [−4, −2].\n")
    if rec['settings'].get('compact'): md += compact_markdown(rec['rows'])
    if rec.get('reduced') is not None: md += reduced_markdown(rec['reduced'])
    return md


def main(argv=None) -> dict:
    a = parser().parse_args(argv)
    for k in ('reps', 'threads'):
        if getattr(a, k) < 1: raise SystemExit(f"--{k} must be >= 1, got {getattr(a, k)}")
    if min(a.batch_size) < 1: raise SystemExit(f"--batch_size must be >= 1, got {min(a.batch_size)}")
    batches = list(dict.fromkeys(a.batch_size))
    if a.warmup < 0: raise SystemExit(f"--warmup must be >= 0, got {a.warmup}")
    if min(a.reduced_batch) < 1: raise SystemExit(f"--reduced_batch must be >= 1, got {min(a.reduced_batch)}")
    if not 0 <= a.pruned < 1: raise SystemExit(f"--pruned must be in [0, 1), got {a.pruned}")
    device = torch.device(a.device)
    if device.type == 'cuda' and not torch.cuda.is_available(): raise SystemExit(f"--device {a.device}: CUDA is not available")
    torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
    configs, fns = [], {}
    for n in a.networks:
        for d in a.datasets:
            for m in a.methods:
                for bs in batches:
                    model, shape, n_cls = make_network(n, d, m, a.image_size, a.sampler, not a.unfused)
                    if a.pruned: late_state(model, a.pruned, a.seed)
                    tr, inf = step_fns(model, shape, n_cls, bs, device, a.seed, a.sampler)
                    key = (n, d, m, bs)
                    configs.append(dict(network=n, dataset=d, method=m, batch_size=bs, input_shape=list(shape), n_params=n_params(model),
                                        n_gates=len(gates(model)), n_units=sum(g.n_units for g in gates(model)),
                                        n_pruned=sum(int((g.mask == 0).sum()) for g in gates(model))))
                    fns[key] = (tr, inf)
                    if a.compact and m != 'none' and n in COMPACT:   # the same network and state, its kept units only
                        fns[key + ('compact',)] = step_fns(copy.deepcopy(model), shape, n_cls, bs, device, a.seed, a.sampler, compact=True)
    for tr, inf in fns.values():
        for _ in range(a.warmup): tr(); inf()
    times = {k: ([], []) for k in fns}
    t0 = time.time()
    for _ in range(a.reps):
        for k, (tr, inf) in fns.items():
            times[k][0].append(timed(tr, device)); times[k][1].append(timed(inf, device))
    rows = []
    for c in configs:
        tr, inf = times[(c['network'], c['dataset'], c['method'], c['batch_size'])]
        rows.append({**c, **{f'train_{k}': v for k, v in stats(tr).items()}, **{f'infer_{k}': v for k, v in stats(inf).items()}})
        if (key := (c['network'], c['dataset'], c['method'], c['batch_size'], 'compact')) in times:
            tr, inf = times[key]
            rows[-1].update({f'compact_train_{k}': v for k, v in stats(tr).items()}, **{f'compact_infer_{k}': v for k, v in stats(inf).items()})
    machine = dict(platform=platform.platform(), cpu=cpu_name(), cpu_count=os.cpu_count(), python=platform.python_version(),
                   torch=torch.__version__)
    if device.type == 'cuda': machine['gpu'] = torch.cuda.get_device_name(device)
    rec = dict(kind='runtime_benchmark',
               command='python benchmarks/runtime.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
               machine=machine,
               settings=dict(reps=a.reps, warmup=a.warmup, batch_size=batches[0], batch_sizes=batches, threads=torch.get_num_threads(),
                             device=str(device), image_size=a.image_size, kl_averaging='mean', optimizer='Adam',
                             sampler=a.sampler, fused=not a.unfused, pruned=a.pruned, compact=a.compact, timed_seconds=round(time.time() - t0, 1)),
               note=a.note, rows=rows)
    if a.reduced is not None:
        rec['reduced'] = time_reduced(a.reduced, a.datasets[0], list(dict.fromkeys(a.reduced_batch)), a.reps, a.warmup, device, a.seed)
    md = page(rec)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1) + '\n')
    mdp = Path(a.md) if a.md else out.with_suffix('.md')
    mdp.write_text(md)
    print(md)
    print(f"wrote {out} and {mdp}")
    return rec


if __name__ == '__main__': main()

"""Cost of the noise gates in training: one Adam step (forward + backward + update, CE + KL) of the MLP and LeNet5
with BMRS_N gates against the same network without gates, at batch 32 and 128, measured in one process.

    python benchmarks/gate_overhead.py [--repeats 200] [--threads 2] [--out results/benchmarks/gate_overhead.json]

Prints the median step time of each configuration and the ratio gated / plain (the paper's Table 3 reports 8.3x
for the MLP and 4.9x for LeNet5 on a GPU). Interleaves the configurations so machine noise hits them alike."""
import argparse, json, platform, statistics, time
from pathlib import Path
import torch
import torch.nn.functional as F
from bmrs.models import mlp, lenet5
from bmrs.layers import model_kl, gates

def step_fn(model, bs, in_shape):
    x = torch.randn(bs, *in_shape); y = torch.randint(0, 10, (bs,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gated = bool(gates(model))
    def step():
        loss = F.cross_entropy(model(x), y)
        if gated: loss = loss + model_kl(model, 'mean')
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return step

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--repeats', type=int, default=200); p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    nets = {'mlp (MNIST: 1024-100x8-10)': (lambda g: mlp(1024, 10, 100, 7, gate=g), (1, 32, 32)),
            'lenet5 (c=1)': (lambda g: lenet5(1, 10, gate=g), (1, 32, 32))}
    fns = {}
    for name, (build, shape) in nets.items():
        for bs in (32, 128):
            for g in (None, 'bmrs_n'):
                m = build(g).train()
                fns[(name, bs, g or 'none')] = step_fn(m, bs, shape)
    for f in fns.values():
        for _ in range(10): f()  # warm-up
    times = {k: [] for k in fns}
    for _ in range(a.repeats):
        for k, f in fns.items():
            t = time.perf_counter(); f(); times[k].append(time.perf_counter() - t)
    rows = []
    for name in nets:
        for bs in (32, 128):
            plain = statistics.median(times[(name, bs, 'none')])*1e3; gated = statistics.median(times[(name, bs, 'bmrs_n')])*1e3
            rows.append(dict(network=name, batch=bs, plain_ms=round(plain, 3), gated_ms=round(gated, 3), ratio=round(gated/plain, 2)))
            print(f"{name:28s} batch {bs:4d}: plain {plain:7.2f} ms  gated {gated:7.2f} ms  ratio {gated/plain:5.2f}x")
    rec = dict(command='python benchmarks/gate_overhead.py ' + ' '.join(f'--{k} {v}' for k, v in vars(a).items() if v is not None),
               machine=dict(platform=platform.platform(), processor=platform.processor(), threads=a.threads,
                            torch=torch.__version__), repeats=a.repeats, rows=rows)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(rec, indent=1))
    return rec

if __name__ == '__main__': main()

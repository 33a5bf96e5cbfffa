"""The input gradient of convolutions with few channels on CPU: torch's backward (oneDNN) against a forward
convolution of the output gradient with the flipped kernel (`FlipConv` below), and what that would do to a compact
LeNet5 training step late in training (issue 19: a Table 1 cell's pruned epochs). A measurement of an alternative
that bmrs does not use: see the result's note.

    python benchmarks/conv_backward.py [--batch_size 32 128] [--reps 200] [--warmup 20] [--threads 1]
                                       [--kept 1 4 20 9] [--out results/benchmarks/conv_backward.json]

Timed with the configurations interleaved call by call (machine noise hits them alike), medians kept:
- op: forward + backward of one convolution whose input needs its gradient, `F.conv2d` under autograd against
  `FlipConv`, at LeNet5's second convolution (14×14 inputs, 5×5 kernels, no padding) with 1 to 6 input channels
  and 4 or 16 outputs, and at a 3×3 convolution with padding 1 on 16×16 inputs; on standard-normal inputs.
- step: a training step (forward, cross-entropy + the gates' mean KL, backward, Adam as `bmrs.train` makes it) of the
  gated LeNet5 through `bmrs.compact.Compact`, its convolutions as they are (torch's backward) and with `FlipConv`
  where a convolution reads at most `--flip_max_in` channels (the rule), gates keeping `--kept` units (the seed-1000 Table 1 cell keeps 1 / 4 / 20 / 9 from about
  epoch 30), pruned units with wide posteriors as `benchmarks/runtime.py --pruned` sets them; one fixed batch of
  standard-normal inputs. Before timing it checks that the two compute the same step (parameters within 1e-5).
The input gradient of a stride-1 convolution is itself a convolution: of the output gradient, padded by
kernel - 1 - padding, with the kernel flipped in space and its input and output channels swapped. Before timing, the
script checks `FlipConv` against torch in float64 (output and every gradient within 1e-12).
"""
import argparse, copy, sys
from pathlib import Path
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path: sys.path.insert(0, str(REPO))
import bmrs.compact as cm
from torch import nn
from bmrs.models import build_model
from bmrs.layers import gates, model_kl
from bmrs.train import make_adam
from bmrs.utils import interleaved_ms
from _record import write_record, timing_options, check_timing, footer

_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

class FlipConv(torch.autograd.Function):
    "A stride-1 convolution with zero padding `padding`; its input gradient a forward convolution with the flipped, transposed kernel, the rest torch's."
    @staticmethod
    def forward(ctx, x, w, b, padding):
        ctx.save_for_backward(x, w); ctx.padding, ctx.bias = padding, b is not None
        return _CONV_FN[w.ndim - 2](x, w, b, 1, padding)
    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        d, gx, gw, gb = w.ndim - 2, None, None, None
        if ctx.needs_input_grad[0]:
            gx = _CONV_FN[d](g, w.flip(tuple(range(2, w.ndim))).transpose(0, 1), None, 1, tuple(k - 1 - p for k, p in zip(w.shape[2:], ctx.padding)))
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, gw, gb = torch.ops.aten.convolution_backward(g, x, w, [w.shape[0]] if ctx.bias else None, [1]*d, list(ctx.padding),
                                                            [1]*d, False, [0]*d, 1, [False, ctx.needs_input_grad[1], ctx.bias and ctx.needs_input_grad[2]])
        return gx, gw, gb, None

def check_flip():
    "`FlipConv` against torch's convolution in float64: output and the gradients of input, weight and bias within 1e-12."
    g = torch.Generator().manual_seed(3)
    for d, size in ((1, (11,)), (2, (9, 10)), (3, (6, 7, 5))):
        for cin, k, pad in ((1, 3, 0), (2, 3, 1), (1, 4, 3), (3, 5, 2)):
            x = torch.randn(3, cin, *size, generator=g, dtype=torch.float64, requires_grad=True)
            w = torch.randn(4, cin, *[k]*d, generator=g, dtype=torch.float64, requires_grad=True)
            b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
            y0, y1 = _CONV_FN[d](x, w, b, 1, (pad,)*d), FlipConv.apply(x, w, b, (pad,)*d)
            gy = torch.randn(y0.shape, generator=g, dtype=torch.float64)
            r0, r1 = (torch.autograd.grad(y, (x, w, b), gy) for y in (y0, y1))
            err = max([(y0 - y1).abs().max().item()] + [(u - v).abs().max().item() for u, v in zip(r0, r1)])
            if err > 1e-12: raise SystemExit(f"conv_backward.py: FlipConv differs from torch's convolution by {err:g} ({d}-d, {cin} in, kernel {k}, padding {pad})")

OPS = [dict(hw=14, k=5, pad=0, cin=c, cout=o) for o in (4, 16) for c in (1, 2, 3, 4, 6)] + \
      [dict(hw=16, k=3, pad=1, cin=c, cout=16) for c in (1, 2, 4)]


def op_rows(batches, reps, warmup) -> list:
    rows = []
    for b in batches:
        for s in OPS:
            g = torch.Generator().manual_seed(0)
            x = torch.randn(b, s['cin'], s['hw'], s['hw'], generator=g, requires_grad=True)
            w = torch.randn(s['cout'], s['cin'], s['k'], s['k'], generator=g, requires_grad=True)
            bias = torch.randn(s['cout'], generator=g, requires_grad=True)
            pad = (s['pad'],)*2
            gy = torch.randn_like(F.conv2d(x, w, bias, 1, pad))
            ms = interleaved_ms(dict(torch=lambda: F.conv2d(x, w, bias, 1, pad).backward(gy),
                                     flip=lambda: FlipConv.apply(x, w, bias, pad).backward(gy)), warmup, reps)
            rows.append(dict(what='op', batch_size=b, **s, torch_ms=ms['torch'], flip_ms=ms['flip'], speedup=ms['torch']/ms['flip']))
            print('op', b, s, {k: round(v, 3) for k, v in ms.items()}, f"{ms['torch']/ms['flip']:.2f}x", flush=True)
    return rows


def late_lenet5(kept, seed=0, image_size=32, script='conv_backward.py'):
    "The gated LeNet5 (one input channel) with gate i keeping `kept[i]` random units; pruned ones wide (mu in [-15, -8], log sigma in [1.5, 3])."
    torch.manual_seed(seed)
    m = build_model('lenet5', in_channels=1, image_size=image_size, n_classes=10, gate='bmrs_n')
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for gate, k in zip(gates(m), kept):
            n = gate.n_units
            if not 1 <= k <= n: raise SystemExit(f"{script}: --kept: a gate of {n} units cannot keep {k}")
            idx = torch.randperm(n, generator=g)
            r = lambda j, lo, hi: (lo + (hi - lo)*torch.rand(j, generator=g, dtype=torch.float64)).to(gate.mu)
            gate.mask.zero_(); gate.mask[idx[:k]] = 1
            gate.mu[idx[k:]], gate.logsigma[idx[k:]] = r(n - k, -15, -8), r(n - k, 1.5, 3)
            gate.mu[idx[:k]], gate.logsigma[idx[:k]] = r(k, -1, 0), r(k, -4, -2)
    return m


class _Flipped(nn.Module):
    "A convolution module's stand-in inside the compact chain: `FlipConv` where the rule applies, else the module's own."
    def __init__(self, conv, flip_max): super().__init__(); self.conv, self.flip_max = conv, flip_max
    @property
    def weight(self): return self.conv.weight
    @property
    def bias(self): return self.conv.bias
    def _conv_forward(self, x, w, b):
        if x.requires_grad and torch.is_grad_enabled() and w.shape[1] <= self.flip_max:
            return FlipConv.apply(x, w, b, tuple(self.conv.padding))
        return self.conv._conv_forward(x, w, b)

def step_fn(model, x, y, flip_max):
    "One compact training step of `model` on (x, y); convolutions reading at most `flip_max` channels through `FlipConv`."
    opt, fwd = make_adam(model, 1e-3), cm.Compact(model)
    steps = fwd.__dict__['_steps']
    fwd.__dict__['_steps'] = [(k, n, _Flipped(m, flip_max) if isinstance(m, nn.Conv2d) else m, g) for k, n, m, g in steps]
    def step():
        model.train()
        loss = F.cross_entropy(fwd(x), y) + model_kl(model, 'mean').to(torch.float32)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return step


def time_two_steps(base, x, y, step_fn, settings:dict, warmup, reps, refusal:str):
    """(ms by name, parameter difference) of a training step of copies of `base` on (x, y) under the two `settings`
    ({name: `step_fn`'s last argument}), timed interleaved, after checking that one step of each gives the same
    parameters (within 1e-5; else exit with `refusal` and the difference)."""
    (k0, s0), (k1, s1) = settings.items()
    a, c = copy.deepcopy(base), copy.deepcopy(base)      # the two compute the same step
    for m, f in ((a, s0), (c, s1)): torch.manual_seed(2); step_fn(m, x, y, f)()
    diff = max((p - q).abs().max().item() for p, q in zip(a.parameters(), c.parameters()))
    if diff > 1e-5: raise SystemExit(f"{refusal} {diff:g}")
    return interleaved_ms({k: step_fn(copy.deepcopy(base), x, y, f) for k, f in settings.items()}, warmup, reps), diff


def step_rows(batches, kept, reps, warmup, rule) -> list:
    rows = []
    for b in batches:
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(b, 1, 32, 32, generator=g), torch.randint(0, 10, (b,), generator=g)
        ms, diff = time_two_steps(late_lenet5(kept), x, y, step_fn, dict(rule=rule, torch=0), warmup, reps,
                                  "conv_backward.py: one step with and without the rule differs by")
        rows.append(dict(what='step', batch_size=b, kept=list(kept), flip_max_in=rule, torch_ms=ms['torch'], rule_ms=ms['rule'],
                         speedup=ms['torch']/ms['rule'], max_param_diff_one_step=diff))
        print('step', b, kept, {k: round(v, 3) for k, v in ms.items()}, f"{ms['torch']/ms['rule']:.2f}x", flush=True)
    return rows


def markdown(rec) -> str:
    ops = [r for r in rec['rows'] if r['what'] == 'op']
    out = ["Forward + backward of one convolution whose input needs its gradient: torch's backward (oneDNN) against "
           "a forward convolution with the flipped kernel (`FlipConv`), median ms, interleaved.", "",
           "| batch | input | kernel, padding | in → out channels | torch ms | flipped ms | torch / flipped |", "|---|---|---|---|---|---|---|"]
    out += [f"| {r['batch_size']} | {r['hw']}×{r['hw']} | {r['k']}×{r['k']}, {r['pad']} | {r['cin']} → {r['cout']} | "
            f"{r['torch_ms']:.3f} | {r['flip_ms']:.3f} | {r['speedup']:.2f}× |" for r in ops]
    steps = [r for r in rec['rows'] if r['what'] == 'step']
    if steps:
        out += ["", f"A compact LeNet5 training step, gates keeping {' / '.join(map(str, steps[0]['kept']))} units, with the rule "
                f"(`FlipConv` where a convolution reads at most {steps[0]['flip_max_in']} channels) and without it (torch's backward everywhere), median ms, interleaved:", "",
                "| batch | torch's backward ms | with the rule ms | speed-up |", "|---|---|---|---|"]
        out += [f"| {r['batch_size']} | {r['torch_ms']:.3f} | {r['rule_ms']:.3f} | {r['speedup']:.2f}× |" for r in steps]
    return '\n'.join(out + footer(rec)) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    timing_options(p, [32, 128], 200, 20)
    p.add_argument('--kept', type=int, nargs=4, default=[1, 4, 20, 9], metavar='K')
    p.add_argument('--flip_max_in', type=int, default=2, help='the step\'s rule: FlipConv for convolutions reading at most this many channels')
    p.add_argument('--no_ops', action='store_true', help='time the training step only')
    a = p.parse_args(argv)
    check_timing(a, 'conv_backward.py')
    torch.set_num_threads(a.threads)
    check_flip()
    rows = ([] if a.no_ops else op_rows(a.batch_size, a.reps, a.warmup)) + step_rows(a.batch_size, a.kept, a.reps, a.warmup, a.flip_max_in)
    rec = write_record('benchmarks/conv_backward.py', argv, a.threads, a.out,
                       dict(kind='conv_backward', reps=a.reps, warmup=a.warmup, note=a.note, rows=rows), markdown)
    print(markdown(rec))
    return rec

if __name__ == '__main__': main()

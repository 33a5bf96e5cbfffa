"""Convolutions with few channels on CPU: torch's (oneDNN) against `bmrs.compact.row_gemm_conv2d` (one matrix product
with the kernel's banded matrix), which the compact forward uses where in × out channels × input width × output width
is at most `bmrs.compact.ROW_GEMM_MAX`; and a compact LeNet5 training step late in training with and without it
(issue 19: a Table 1 cell's pruned epochs).

    python benchmarks/tiny_conv.py [--batch_size 8 32 128] [--reps 100] [--warmup 10] [--threads 1]
                                   [--kept 1 4 20 9] [--no_ops] [--out results/benchmarks/tiny_conv.json]

Timed with the two interleaved call by call (machine noise hits them alike), medians kept:
- op: one convolution (5×5 kernels, no padding, bias) forward + backward on standard-normal inputs, at LeNet5's shapes
  on MNIST with few channels: its first convolution (28×28 inputs, whose gradient is not needed) and its second
  (12×12 inputs, whose gradient is); in training at each `--batch_size` and in inference (`torch.inference_mode`) at
  batch 512, as validation runs. Each row says what the rule picks.
- step: a training step (forward, cross-entropy + the gates' mean KL, backward, Adam as `bmrs.train` makes it) of the
  gated LeNet5 (MNIST shape) through `bmrs.compact.Compact`, gates keeping `--kept` units (the seed-1000 Table 1 cell
  keeps 1 / 4 / 20 / 9 from about epoch 34) and keeping all, pruned units with wide posteriors; one fixed batch of
  standard-normal inputs; `ROW_GEMM_MAX` as it is against 0 (torch's convolutions everywhere). Before timing it checks
  that the two compute the same step (parameters within 1e-5) and, in float64, `row_gemm_conv2d` against torch at every
  op shape (output and gradients within 1e-12).
"""
import argparse, sys
from pathlib import Path
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path: sys.path.insert(0, str(REPO))
import bmrs.compact as cm
from bmrs.layers import model_kl
from bmrs.train import make_adam
from bmrs.utils import interleaved_ms
from _record import write_record, timing_options, check_timing, footer
from conv_backward import late_lenet5, time_two_steps

RULE = cm.ROW_GEMM_MAX
OPS = [dict(hw=28, cin=c, cout=o, xgrad=False) for c, o in ((1, 1), (2, 1), (1, 2), (1, 3), (3, 1), (1, 6))] + \
      [dict(hw=12, cin=c, cout=o, xgrad=True) for c, o in ((1, 1), (1, 4), (2, 4), (3, 4), (4, 4), (6, 2), (4, 8), (6, 4), (6, 16))]

def product(s) -> int: return s['cin']*s['cout']*s['hw']*(s['hw'] - 4)

def tensors(s, b, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, s['cin'], s['hw'], s['hw'], generator=g, dtype=dtype, requires_grad=s['xgrad'])
    w = torch.randn(s['cout'], s['cin'], 5, 5, generator=g, dtype=dtype, requires_grad=True)
    bias = torch.randn(s['cout'], generator=g, dtype=dtype, requires_grad=True)
    return x, w, bias, torch.randn(b, s['cout'], s['hw'] - 4, s['hw'] - 4, generator=g, dtype=dtype)

def check():
    "`row_gemm_conv2d` against torch in float64 at every op shape: output and gradients within 1e-12."
    for s in OPS:
        x, w, bias, gy = tensors(s, 3, torch.float64)
        ins = [t for t in (x, w, bias) if t.requires_grad]
        r0, r1 = ([y] + list(torch.autograd.grad(y, ins, gy)) for y in (F.conv2d(x, w, bias), cm.row_gemm_conv2d(x, w, bias)))
        err = max((u - v).abs().max().item() for u, v in zip(r0, r1))
        if err > 1e-12: raise SystemExit(f"tiny_conv.py: row_gemm_conv2d differs from torch's convolution by {err:g} at {s}")

def op_rows(batches, reps, warmup) -> list:
    rows = []
    for b, mode in [(b, 'train') for b in batches] + [(512, 'inference')]:
        for s in OPS:
            x, w, bias, gy = tensors(s, b)
            if mode == 'train':
                fns = dict(torch=lambda: F.conv2d(x, w, bias).backward(gy), row_gemm=lambda: cm.row_gemm_conv2d(x, w, bias).backward(gy))
            else:
                def inf(f):
                    def run():
                        with torch.inference_mode(): f(x, w, bias)
                    return run
                fns = dict(torch=inf(F.conv2d), row_gemm=inf(cm.row_gemm_conv2d))
            ms = interleaved_ms(fns, warmup, reps)
            rows.append(dict(what='op', mode=mode, batch_size=b, **s, product=product(s), picked=mode == 'train' and product(s) <= RULE,
                             torch_ms=ms['torch'], row_gemm_ms=ms['row_gemm'], speedup=ms['torch']/ms['row_gemm']))
            print('op', mode, b, s, {k: round(v, 3) for k, v in ms.items()}, f"{ms['torch']/ms['row_gemm']:.2f}x", flush=True)
    return rows

def step_fn(model, x, y, rule):
    "One compact training step of `model` on (x, y) with `ROW_GEMM_MAX = rule` for its duration."
    opt, fwd = make_adam(model, 1e-3), cm.Compact(model)
    def step():
        cm.ROW_GEMM_MAX = rule
        try:
            model.train()
            loss = F.cross_entropy(fwd(x), y) + model_kl(model, 'mean').to(torch.float32)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        finally: cm.ROW_GEMM_MAX = RULE
    return step

def step_rows(batches, kepts, reps, warmup) -> list:
    rows = []
    for kept in kepts:
        for b in batches:
            g = torch.Generator().manual_seed(1)
            x, y = torch.randn(b, 1, 28, 28, generator=g), torch.randint(0, 10, (b,), generator=g)
            ms, diff = time_two_steps(late_lenet5(kept, image_size=28, script='tiny_conv.py'), x, y, step_fn, dict(row_gemm=RULE, torch=0),
                                      warmup, reps, "tiny_conv.py: one step with and without row_gemm_conv2d differs by")
            rows.append(dict(what='step', batch_size=b, kept=list(kept), rule=RULE, torch_ms=ms['torch'], row_gemm_ms=ms['row_gemm'],
                             speedup=ms['torch']/ms['row_gemm'], max_param_diff_one_step=diff))
            print('step', b, kept, {k: round(v, 3) for k, v in ms.items()}, f"{ms['torch']/ms['row_gemm']:.2f}x", flush=True)
    return rows

def markdown(rec) -> str:
    ops = [r for r in rec['rows'] if r['what'] == 'op']
    out = [f"One convolution (5×5 kernels, no padding) with few channels: torch's (oneDNN) against `row_gemm_conv2d` (one matrix "
           f"product), median ms, interleaved; training: forward + backward (the 28×28 rows without the input's gradient, as "
           f"LeNet5's first convolution, the 12×12 rows with it); inference: forward in inference mode. In training the rule picks the "
           f"product where in × out × input width × output width ≤ {rec['rule']}.", "",
           "| mode | batch | input | in → out channels | product | picked | torch ms | one product ms | torch / product |",
           "|---|---|---|---|---|---|---|---|---|"]
    out += [f"| {r['mode']} | {r['batch_size']} | {r['hw']}×{r['hw']} | {r['cin']} → {r['cout']} | {r['product']} | "
            f"{'yes' if r['picked'] else 'no'} | {r['torch_ms']:.3f} | {r['row_gemm_ms']:.3f} | {r['speedup']:.2f}× |" for r in ops]
    steps = [r for r in rec['rows'] if r['what'] == 'step']
    if steps:
        out += ["", "A compact LeNet5 training step (MNIST shape) with the rule and with torch's convolutions everywhere "
                "(`ROW_GEMM_MAX = 0`), median ms, interleaved:", "",
                "| units kept | batch | torch ms | with the rule ms | speed-up |", "|---|---|---|---|---|"]
        out += [f"| {' / '.join(map(str, r['kept']))} | {r['batch_size']} | {r['torch_ms']:.3f} | {r['row_gemm_ms']:.3f} | {r['speedup']:.2f}× |" for r in steps]
    return '\n'.join(out + footer(rec)) + '\n'

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    timing_options(p, [8, 32, 128], 100, 10)
    p.add_argument('--kept', type=int, nargs=4, default=[1, 4, 20, 9], metavar='K', help='units kept per gate in the late state (also timed: all kept)')
    p.add_argument('--no_ops', action='store_true', help='time the training step only')
    a = p.parse_args(argv)
    check_timing(a, 'tiny_conv.py')
    torch.set_num_threads(a.threads)
    check()
    rows = ([] if a.no_ops else op_rows(a.batch_size, a.reps, a.warmup)) + step_rows(a.batch_size, [a.kept, [6, 16, 120, 84]], a.reps, a.warmup)
    rec = write_record('benchmarks/tiny_conv.py', argv, a.threads, a.out,
                       dict(kind='tiny_conv', rule=RULE, reps=a.reps, warmup=a.warmup, note=a.note, rows=rows), markdown)
    print(markdown(rec))
    return rec

if __name__ == '__main__': main()

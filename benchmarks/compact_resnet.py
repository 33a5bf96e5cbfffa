"""The compact forward on a network that is not a chain (`bmrs.compact`'s torch.fx path): ResNet-18 for CIFAR-10-shaped
inputs (3×32×32, the 3×3 stem without max-pool), plain, gated and masked, and gated through `bmrs.compact.Compact`
(`bmrs-train --compact`), and through `Compact(columns=False)` (its layers' kept rows only, every output spread back to
full width), side by side (issue 19: faster training once units are pruned). `--network vit` times a
small Hugging Face ViT instead (`VIT`: 6 blocks of width 192, 3 heads, 4×4 patches of 32×32 images; its gates on the
MLP outputs, which `Compact` computes through their `Gated` containers, as torch.fx cannot trace it).

    python benchmarks/compact_resnet.py [--network resnet18] [--batch_size 32] [--pruned 0 0.5 0.85] [--reps 10] [--warmup 2]
                                        [--threads 1] [--out results/benchmarks/compact_resnet18.json]

Timed with the configurations interleaved call by call (machine noise hits them alike), medians kept, on one fixed
batch of standard-normal inputs, by `benchmarks/runtime.py`'s `step_fns`:
- train: one training step (forward in training mode, cross-entropy + the gates' mean KL, backward, Adam as
  `bmrs.train` makes it);
- inference: one forward pass in eval mode under `torch.no_grad()` of an untrained copy.
At each `--pruned` fraction every gate has that share of its units pruned (mask 0) with wide posteriors, the others
kept, as `benchmarks/runtime.py --pruned` sets them; the plain network is timed beside them at each. Before timing it
checks that the masked and the compact network compute the same: outputs and every gradient of one training-mode
forward with the same noise within 1e-4 of the largest.
"""
import argparse, copy, sys
from pathlib import Path
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path: sys.path.insert(0, str(REPO))
from bmrs.models import resnet, vit
from bmrs.layers import gates
from bmrs.compact import Compact
from bmrs.utils import interleaved_ms
from _record import write_record, timing_options, check_timing
from runtime import late_state, step_fns


VIT = dict(hidden_size=192, num_hidden_layers=6, num_attention_heads=3, intermediate_size=768, image_size=32, patch_size=4)

def networks(name):
    "(gated, plain) network `name` for 3×32×32 inputs and 10 classes."
    if name == 'resnet18': return resnet(18, small_input=True, in_channels=3), resnet(18, small_input=True, in_channels=3, gate=None)
    from transformers import ViTConfig
    return tuple(vit(n_classes=10, config=ViTConfig(**VIT), in_channels=3, gate=g) for g in ('bmrs_n', None))

def check(model, x):
    "Largest difference of outputs and gradients, masked against compact, relative to the largest value."
    out = []
    for f in (model, Compact(model)):
        model.train(); torch.manual_seed(0); y = f(x)
        out.append([y] + list(torch.autograd.grad(y.square().mean(), list(model.parameters()), allow_unused=True)))
    return max(((a - b).abs().max()/a.abs().max().clamp(min=1e-30)).item() for a, b in zip(*out) if a is not None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--network', default='resnet18', choices=('resnet18', 'vit'))
    timing_options(p, [32], 10, 2)
    p.add_argument('--pruned', type=float, nargs='+', default=[0., .5, .85])
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args(argv)
    check_timing(a, 'compact_resnet.py')
    if not all(0 <= f < 1 for f in a.pruned): raise SystemExit(f"compact_resnet.py: --pruned fractions must be in [0, 1), got {a.pruned}")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gated0, plain = networks(a.network)
    rows = []
    for b in a.batch_size:
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(a.seed + 1))   # the check's inputs
        for frac in a.pruned:
            gated = late_state(copy.deepcopy(gated0), frac, a.seed)
            err = check(copy.deepcopy(gated), x)
            if err > 1e-4: raise SystemExit(f"compact_resnet.py: the compact forward differs from the masked network by {err:g} (relative)")
            kinds = (('plain', plain, False), ('masked', gated, False), ('compact', gated, True))
            if a.network == 'resnet18': kinds += (('rows', gated, dict(columns=False)),)   # the ViT's Gated path has no readers
            calls = {k: step_fns(copy.deepcopy(m), (3, 32, 32), 10, b, torch.device('cpu'), a.seed + 1, compact=c) for k, m, c in kinds}
            ms = interleaved_ms({(k, w): f for k, (tr, inf) in calls.items() for w, f in (('train', tr), ('inference', inf))}, a.warmup, a.reps)
            n_pruned = sum(int((g_.mask == 0).sum()) for g_ in gates(gated))
            row = dict(batch_size=b, pruned=frac, n_pruned=n_pruned, n_units=sum(g_.n_units for g_ in gates(gated)), max_rel_diff=err,
                       **{f'{w}_{k}_ms': v for (k, w), v in ms.items()})
            rows.append(row)
            print(b, frac, {f'{w}/{k}': round(v, 1) for (k, w), v in ms.items()}, flush=True)
    rec = write_record('benchmarks/compact_resnet.py', argv, a.threads, a.out,
                       dict(kind='compact_resnet', network=a.network, reps=a.reps, warmup=a.warmup, note=a.note, rows=rows), markdown)
    print(markdown(rec))
    return rec


def markdown(rec) -> str:
    what = ("ResNet-18 (CIFAR-10 shape, 3×3 stem)" if rec.get('network', 'resnet18') == 'resnet18' else
            "A small ViT (`VIT`: 6 blocks of width 192, 3 heads, 4×4 patches of 32×32 images, gates on the MLP outputs)")
    how = ("its torch.fx path: each gated layer computes its kept rows, a block's inner convolutions read only the kept channels" if rec.get('network', 'resnet18') == 'resnet18' else
           "each gated MLP output layer computes its kept rows, through its `Gated` container")
    out = [f"{what}, median ms per call, the configurations interleaved: plain (no gates), gated "
           f"and masked, gated through `bmrs.compact.Compact` ({how}).", "",
           "| batch | units pruned | train: plain | masked | compact | masked / compact | compact / plain | inference: plain | masked | compact | masked / compact |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows_only = [r for r in rec['rows'] if 'train_rows_ms' in r]
    for r in rec['rows']:
        out.append(f"| {r['batch_size']} | {r['n_pruned']} of {r['n_units']} ({100*r['pruned']:.0f} %) | {r['train_plain_ms']:.1f} | {r['train_masked_ms']:.1f} | "
                   f"{r['train_compact_ms']:.1f} | {r['train_masked_ms']/r['train_compact_ms']:.2f}× | {r['train_compact_ms']/r['train_plain_ms']:.2f}× | "
                   f"{r['inference_plain_ms']:.1f} | {r['inference_masked_ms']:.1f} | {r['inference_compact_ms']:.1f} | "
                   f"{r['inference_masked_ms']/r['inference_compact_ms']:.2f}× |")
    m = rec['machine']
    out += ["", f"`{rec['command']}`, {rec['date']}, {m['platform']}, torch {m['torch']}, {m['threads']} thread(s), {rec['reps']} "
            f"repetitions after {rec['warmup']} warm-up calls. Pruned units have μ in [−15, −8] and log σ in [1.5, 3], kept ones μ in "
            "[−1, 0] and log σ in [−4, −2] (`benchmarks/runtime.py`'s `late_state`)."]
    if rows_only:
        out += ["", "Compact with its layers' kept rows only (`Compact(columns=False)`: every output spread back to full width, so "
                "the next layer reads every input channel) against compact as it runs (a block's inner gate's output stays compact "
                "up to the convolution reading it, which reads only the kept channels), the same calls, median ms:", "",
                "| batch | units pruned | train: rows only | compact | rows only / compact | inference: rows only | compact | rows only / compact |",
                "|---|---|---|---|---|---|---|---|"]
        out += [f"| {r['batch_size']} | {100*r['pruned']:.0f} % | {r['train_rows_ms']:.1f} | {r['train_compact_ms']:.1f} | "
                f"{r['train_rows_ms']/r['train_compact_ms']:.2f}× | {r['inference_rows_ms']:.1f} | {r['inference_compact_ms']:.1f} | "
                f"{r['inference_rows_ms']/r['inference_compact_ms']:.2f}× |" for r in rows_only]
    if rec.get('note'): out += ["", rec['note']]
    return '\n'.join(out) + '\n'

if __name__ == '__main__': main()

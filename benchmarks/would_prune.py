"""Which units would each criterion prune? Train the paper's MNIST MLP (1024 -> 7 x 100 -> 10, Tanh, BMRS_N gates,
batch 128, Adam lr 8.5e-4, KL 'mean', compress every epoch) and after every epoch record the share of units that
BMRS_N (Eq. 8), BMRS_N as released (+ log(2 pi)/2), BMRS_U-8, BMRS_U-4, SNR > 1 and E[theta] > 0.1 would prune
on the same network, with validation accuracy and posterior summaries.

    python benchmarks/would_prune.py [--epochs 50] [--seed 0] [--data_root data] [--out results/would_prune/mnist-mlp-seed0.json]
                                     [--md results/benchmarks/would_prune.md]

Writes the record (JSON) and its page (Markdown, `benchmarks/pages.py`'s `would_prune_page`, which regenerates it from
the record).
"""
import argparse, json, platform, time
from pathlib import Path
import torch
from bmrs.layers import gates, compress_model, unit_compression
from bmrs.models import mlp
from bmrs.reduction import delta_f_lognormal_release
from bmrs.train import TrainConfig, train_epoch
from bmrs.utils import evaluate, seed_everything, environment
from bmrs.files import write_atomic
from bmrs import data as bdata
import sys; sys.path.insert(0, str(Path(__file__).resolve().parent))   # pages.py, beside this script

def shares(model):
    n = sum(g.n_units for g in gates(model))
    pct = lambda masks: 100*sum(int((~k).sum()) for k in masks)/n
    out = {name: pct([g.keep(c, None) for g in gates(model)]) for name, c in [('bmrs_n', 'bmrs_n'), ('snr', 'snr'), ('etheta', 'etheta')]}
    for p1 in (8, 4):
        ks = []
        for g in gates(model): old = g.p1; g.p1 = p1; ks.append(g.keep('bmrs_u')); g.p1 = old
        out[f'bmrs_u{p1}'] = pct(ks)
    out['bmrs_n_release'] = pct([delta_f_lognormal_release(g.mu.detach(), g.sigma.detach()) < 0 for g in gates(model)])
    return out

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--epochs', type=int, default=50); p.add_argument('--seed', type=int, default=0)
    p.add_argument('--data_root', default='data'); p.add_argument('--out', default='results/would_prune/mnist-mlp-seed0.json')
    p.add_argument('--md', default='results/benchmarks/would_prune.md', help='the Markdown page to write')
    a = p.parse_args()
    seed_everything(a.seed)
    splits = bdata.load('mnist', a.data_root, split_seed=a.seed)
    model = mlp(1024, 10, 100, 7, gate='bmrs_n')   # the paper's MNIST MLP, as bmrs-train builds it
    cfg = TrainConfig(batch_size=128, learning_rate=8.5e-4, kl_averaging='mean', progress=False)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    gen = torch.Generator().manual_seed(a.seed)
    rows = []
    for ep in range(1, a.epochs + 1):
        t = time.perf_counter()
        st = train_epoch(model, opt, splits.train, cfg, 'cpu', gen)
        compress_model(model)  # continuous BMRS_N pruning (Eq. 8)
        mus = torch.cat([g.mu.detach() for g in gates(model)]); ls = torch.cat([g.logsigma.detach() for g in gates(model)])
        row = dict(epoch=ep, seconds=round(time.perf_counter() - t, 1), loss=st['loss'], kl=st['kl'],
                   val_top1=evaluate(model, splits.val, 'cpu')['top1'], pruned_by_bmrs_n=unit_compression(model),
                   would_prune=shares(model), mu_median=mus.median().item(), logsigma_median=ls.median().item())
        rows.append(row); print(json.dumps(row), flush=True)
    rec = dict(command='python benchmarks/would_prune.py ' + ' '.join(f'--{k} {v}' for k, v in vars(a).items()),
               environment=environment(torch.device('cpu')), epochs=rows,
               test_top1=evaluate(model, splits.test, 'cpu')['top1'])
    write_atomic(a.out, json.dumps(rec, indent=1))
    from pages import would_prune_page
    write_atomic(a.md, would_prune_page(rec))

if __name__ == '__main__': main()

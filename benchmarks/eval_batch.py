"""How long `bmrs.utils.evaluate` takes on a validation split at several batch sizes (issue 19: the per-epoch
evaluation is part of a Table 1 cell). One thread by default; the batch sizes are interleaved, repetition by repetition,
and the median of each is kept.

    python benchmarks/eval_batch.py [--networks mlp lenet5] [--dataset mnist] [--batch_sizes 128 256 512 1024]
                                    [--reps 5] [--threads 1] [--out results/fast_path_cpu/eval_batch/eval_batch.json]

The networks are gated (BMRS_N, as trained) and in eval mode, with every unit kept, on the seeded validation split of
`--dataset` (`bmrs.data.load`, `$BMRS_DATA_ROOT`). The JSON keeps milliseconds per evaluation and the top-1 each batch
size gives (which must agree: the batch size changes only the order of float sums, not the predictions).
"""
import argparse, os, sys
from pathlib import Path
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path: sys.path.insert(0, str(REPO))
from bmrs.models import build_model
from bmrs.utils import evaluate, interleaved_ms
from bmrs import data as bdata
from _record import write_record

MLP = dict(mnist=(7, 100), fashion_mnist=(1, 150))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--networks', nargs='+', default=['mlp', 'lenet5'])
    p.add_argument('--dataset', default='mnist')
    p.add_argument('--batch_sizes', nargs='+', type=int, default=[128, 256, 512, 1024])
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    splits = bdata.load(a.dataset, os.environ.get('BMRS_DATA_ROOT', str(REPO/'data')), split_seed=1000)
    rows = []
    for net in a.networks:
        torch.manual_seed(0)
        kw = dict(zip(('n_layers', 'hidden_dim'), MLP[a.dataset])) if net == 'mlp' else {}
        model = build_model(net, in_channels=splits.in_channels, image_size=splits.image_size, n_classes=splits.n_classes, **kw).eval()
        top = {b: evaluate(model, splits.val, 'cpu', b)['top1'] for b in a.batch_sizes}
        ms = interleaved_ms({b: (lambda b=b: evaluate(model, splits.val, 'cpu', b)) for b in a.batch_sizes}, 1, a.reps)
        rows += [dict(network=net, dataset=a.dataset, n_examples=len(splits.val), batch_size=b, ms=ms[b], top1=top[b]) for b in a.batch_sizes]
        print(net, {b: round(ms[b], 1) for b in a.batch_sizes}, flush=True)
    return write_record('benchmarks/eval_batch.py', argv, a.threads, a.out, dict(kind='eval_batch', rows=rows))

if __name__ == '__main__': main()

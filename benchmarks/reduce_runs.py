"""Physically reduce trained runs and report size, MACs, CPU latency and accuracy before and after.

    python benchmarks/reduce_runs.py RUN.json [RUN.json ...] [--out results/reduce] [--threads 1] [--repeats 50]

For each `bmrs-train` run record: rebuild the network, load its best checkpoint, evaluate the gated network on the
test set, `bmrs.reduce.reduce_and_report` it (reduced model under runs/reduce/NAME, report under --out), and evaluate
the reduced network on the same test set."""
import argparse, json
from pathlib import Path
import torch
from bmrs.reduce import reduce_and_report
from bmrs.train import load_run, arch_of
from bmrs.utils import evaluate
from bmrs.files import write_atomic
from bmrs import data as bdata

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runs', nargs='+'); p.add_argument('--out', default='results/reduce')
    p.add_argument('--threads', type=int, default=1); p.add_argument('--repeats', type=int, default=50)
    p.add_argument('--data_root', default='data')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    for run in a.runs:
        rec = json.loads(Path(run).read_text()); model, cfg = load_run(run)   # load_run: paths relative to the record
        splits = bdata.load(cfg.dataset, a.data_root, split_seed=cfg.seed, limit=cfg.limit)
        arch = arch_of(cfg, splits)
        acc_gated = evaluate(model, splits.test, 'cpu')['top1']
        name = Path(run).stem
        red, rep = reduce_and_report(model, splits.test.x[:1], Path('runs/reduce')/name, arch, n_repeat=a.repeats, threads=a.threads)
        acc_red = evaluate(red, splits.test, 'cpu')['top1']
        out = dict(run=run, command='python benchmarks/reduce_runs.py ' + ' '.join(a.runs) + f' --out {a.out} --threads {a.threads} --repeats {a.repeats}',
                   test_top1_gated=acc_gated, test_top1_reduced=acc_red, recorded_test_top1=rec['metrics']['test_top1'],
                   totals=rep.totals.reset_index().astype(str).to_dict('records'), info=rep.info)
        write_atomic(Path(a.out)/f"{name}.json", json.dumps(out, indent=1, default=str))
        t = rep.totals
        print(f"{name}: test top-1 gated {acc_gated:.2f}% reduced {acc_red:.2f}%")
        print(t.to_string())

if __name__ == '__main__': main()

"""Training throughput of `bmrs-train`'s epoch loop with 1 and N processes (DDP under torchrun), and on a GPU the
paper's Table 3 layout (training-step time of plain vs gated networks, batch sizes, fp32 / bf16).

CPU part (always): samples/s of `bmrs.train.train_epoch` on a BMRS_N-gated MLP (the paper's 7 × 100) with the same
global batch for every process count, gloo on the CPU, one thread per process; the process counts are measured
interleaved (1, 2, 1, 2, ...) and reported as medians over the repeats, with the ratio to one process.
GPU part (only where CUDA is): the same with NCCL for 1 .. #GPUs processes, and `--table3`: plain vs gated MLP, LeNet5,
ResNet-18/50 and ViT-B/16 training steps at batch 64 and 128 in fp32 and bf16 on one GPU.

    python benchmarks/scaling.py --nprocs 1 2 --repeats 7 --out results/benchmarks/scaling_cpu.json
    python benchmarks/scaling.py --device cuda --nprocs 1 2 4 8 --table3 --out results/benchmarks/scaling_gpu.json

Data are random tensors shaped like MNIST (32 × 32, 10 classes): nothing is downloaded, and speed does not depend on
the pixels. Numbers are of their machine and moment; a shared machine makes single measurements noisy, hence the
interleaving and the medians."""
import argparse, json, os, platform, shlex, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path

import torch


def worker(a):
    "One timed run (every rank of a torchrun job, or the one process): writes rank 0's samples/s to `a.result`"
    import bmrs.train as bt
    from bmrs.data import TensorData
    from bmrs.distributed import dist_env, rank_device, init_distributed, close_distributed, wrap_ddp, seed_rank_noise
    from bmrs.models import build_model
    torch.set_num_threads(a.threads)
    d = dist_env(); device = rank_device(d, a.device); init_distributed(d, device)
    torch.manual_seed(0)
    model = build_model(a.network, in_channels=1 if a.network != 'vit' else 3, image_size=32, n_classes=10,
                        gate=None if a.plain else 'bmrs_n').to(device)
    seed_rank_noise(0, d)
    n = a.batch_size*(a.steps + a.warmup)
    g = torch.Generator().manual_seed(1)
    data = TensorData(torch.randn(n, 1 if a.network != 'vit' else 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)).to(device)
    cfg = bt.TrainConfig(network=a.network, batch_size=a.batch_size, precision=a.precision, progress=False)
    opt, _ = bt.make_optimizer(model, cfg, a.steps + a.warmup)
    net = wrap_ddp(model, d, device)
    warm = TensorData(data.x[:a.batch_size*a.warmup], data.y[:a.batch_size*a.warmup])
    timed = TensorData(data.x[a.batch_size*a.warmup:], data.y[a.batch_size*a.warmup:])
    bt.train_epoch(net, opt, warm, cfg, device, torch.Generator().manual_seed(2), d=d)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == 'cuda' else (lambda: None)
    if d.active: torch.distributed.barrier()
    sync(); t = time.perf_counter()
    bt.train_epoch(net, opt, timed, cfg, device, torch.Generator().manual_seed(3), d=d)
    sync()
    if d.active: torch.distributed.barrier()
    dt = time.perf_counter() - t
    if d.is_main: Path(a.result).write_text(json.dumps(dict(samples_per_s=len(timed)/dt, step_ms=1000*dt/a.steps)))
    close_distributed()


def measure(a, nproc, **over):
    "Samples/s and ms per step of one run with `nproc` processes (torchrun for more than one)"
    with tempfile.TemporaryDirectory() as tmp:
        res = Path(tmp)/'r.json'
        opts = dict(network=a.network, batch_size=a.batch_size, steps=a.steps, warmup=a.warmup, device=a.device,
                    threads=a.threads, precision='fp32', plain=False) | over
        argv = [__file__, '--worker', '--result', str(res)] + sum(([f'--{k}', str(v)] for k, v in opts.items() if k != 'plain'), []) \
            + (['--plain'] if opts['plain'] else [])
        cmd = ([sys.executable] if nproc == 1 else [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc)])
        r = subprocess.run(cmd + argv, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)))
        if r.returncode != 0: sys.exit(f"scaling.py: error: the {nproc}-process run failed: {r.stderr.strip().splitlines()[-1:]}")
        return json.loads(res.read_text())


def scaling(a):
    "{nprocs: median samples/s, ...} measured interleaved over `a.repeats` rounds"
    runs = {n: [] for n in a.nprocs}
    for i in range(a.repeats):
        for n in (a.nprocs if i % 2 == 0 else a.nprocs[::-1]):
            runs[n].append(measure(a, n)['samples_per_s'])
            print(f"round {i + 1}/{a.repeats}: {n} process(es) {runs[n][-1]:.0f} samples/s", file=sys.stderr)
    med = {n: statistics.median(v) for n, v in runs.items()}
    base = med[a.nprocs[0]]
    return [dict(nprocs=n, samples_per_s_median=med[n], samples_per_s=runs[n], ratio_to_first=med[n]/base) for n in a.nprocs]


TABLE3 = ('mlp', 'lenet5', 'resnet18', 'resnet50', 'vit')


def table3(a):
    "The paper's Table 3 on one GPU: ms per training step of plain vs gated networks, batch 64 and 128, fp32 and bf16"
    rows = []
    for net in TABLE3:
        for bs in (64, 128):
            for prec in ('fp32', 'bf16'):
                t = {False: [], True: []}
                for i in range(a.repeats):
                    for plain in ((False, True) if i % 2 == 0 else (True, False)):
                        t[plain].append(measure(a, 1, network=net, batch_size=bs, precision=prec, plain=plain)['step_ms'])
                rows.append(dict(network=net, batch_size=bs, precision=prec, plain_ms=statistics.median(t[True]),
                                 gated_ms=statistics.median(t[False]),
                                 gated_over_plain=statistics.median(t[False])/statistics.median(t[True])))
                print(rows[-1], file=sys.stderr)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--nprocs', type=int, nargs='+', default=[1, 2], help='process counts to compare (the first is the baseline)')
    p.add_argument('--repeats', type=int, default=7, help='interleaved rounds (medians over them)')
    p.add_argument('--steps', type=int, default=60, help='timed training steps per run')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps first')
    p.add_argument('--batch_size', type=int, default=128, help='global batch (all processes together)')
    p.add_argument('--network', default='mlp')
    p.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    p.add_argument('--threads', type=int, default=1, help='torch threads per process')
    p.add_argument('--table3', action='store_true', help='(CUDA) also the Table 3 layout: plain vs gated step times')
    p.add_argument('--out', default=None, help='JSON to write (default: print)')
    p.add_argument('--note', default='', help='free text stored with the results (e.g. what else ran on the machine)')
    # the worker's options
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--result', help=argparse.SUPPRESS)
    p.add_argument('--precision', default='fp32', help=argparse.SUPPRESS)
    p.add_argument('--plain', action='store_true', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker: return worker(a)
    if a.device == 'cuda' and not torch.cuda.is_available(): sys.exit("scaling.py: error: --device cuda but CUDA is not available")
    if a.device == 'cuda' and max(a.nprocs) > torch.cuda.device_count():
        sys.exit(f"scaling.py: error: --nprocs {max(a.nprocs)} but {torch.cuda.device_count()} GPU(s)")
    res = dict(command='python benchmarks/scaling.py ' + shlex.join(argv if argv is not None else sys.argv[1:]),
               date=datetime.now(timezone.utc).isoformat(timespec='seconds'), note=a.note,
               machine=dict(platform=platform.platform(), processor=platform.processor(), cpu_count=os.cpu_count(),
                            torch=torch.__version__, gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
                            load_average_before=os.getloadavg()),
               setup=dict(network=a.network, gate='bmrs_n', batch_size=a.batch_size, steps=a.steps, warmup=a.warmup,
                          device=a.device, threads_per_process=a.threads, backend='nccl' if a.device == 'cuda' else 'gloo'),
               scaling=scaling(a))
    if a.table3 and a.device == 'cuda': res['table3'] = table3(a)
    res['machine']['load_average_after'] = os.getloadavg()
    text = json.dumps(res, indent=1)
    if a.out: Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(text + '\n')
    else: print(text)


if __name__ == '__main__': main()

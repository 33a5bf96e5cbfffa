"""bmrs-train with the gates' sampler chosen: python train_drv.py {fast|exact|exact_unfused} TIMING_JSON -- bmrs-train args"""
import sys, time, json, torch
import bmrs.train as T
from bmrs.layers import fuse_gates, set_sampler, gates
mode, timing_path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
orig_build, orig_epoch, orig_eval = T.build, T.train_epoch, T.evaluate
def build(cfg, splits):
    m = orig_build(cfg, splits)
    if gates(m):
        set_sampler(m, 'exact' if mode.startswith('exact') else 'fast')
        if mode != 'exact_unfused': fuse_gates(m)
    return m
times = dict(train_epoch=[], evaluate=[])
def train_epoch(*a, **k):
    t = time.perf_counter(); r = orig_epoch(*a, **k); times['train_epoch'].append(time.perf_counter() - t); return r
def evaluate(*a, **k):
    t = time.perf_counter(); r = orig_eval(*a, **k); times['evaluate'].append(time.perf_counter() - t); return r
T.build, T.train_epoch, T.evaluate = build, train_epoch, evaluate
torch.set_num_threads(1)
t0 = time.perf_counter()
try: T.main(args)
finally:
    times['total_s'] = time.perf_counter() - t0; times['mode'] = mode; times['args'] = args
    json.dump(times, open(timing_path, 'w'), indent=1)

#!/usr/bin/env python
"""Prune any network (issue 17, item 7): torchvision and transformers networks with random weights, gates placed by
`bmrs.models.add_gates` presets, a random half of each gate's units masked (a coupled gate is one gate: its places share
one subset), then physically reduced by `bmrs.reduce.reduce` and, beside it, by Torch-Pruning on the same channel sets
(`bmrs.tp.prune`: channels through its dependency graph, attention heads through its MetaPruner's head options). Writes `results/zoo/zoo.json` and `results/zoo/zoo.md` (with the command, machine and date).

    python benchmarks/zoo.py                       # every network
    python benchmarks/zoo.py --networks resnet18 hf_bert --size 64 --reps 5
    python benchmarks/zoo.py --networks convnext_tiny --size 64 --merge   # rerun one row, keep the others

Latency: batch 1, one thread, the plain unpruned network and the reduced one timed interleaved (`--reps` rounds), medians."""
import argparse, contextlib, copy, datetime, json, math, os, platform, signal, statistics, sys, time, traceback, warnings
from pathlib import Path
import torch
from torch import nn

CNNS = ('resnet18', 'resnet50', 'mobilenet_v2', 'efficientnet_b0', 'densenet121', 'convnext_tiny')
NETWORKS = CNNS + ('vit_b_16', 'hf_vit', 'hf_bert', 'hf_gpt2', 'hf_llama')

class Out(nn.Module):
    "A transformers model called with one tensor (`key=`), returning its logits tensor."
    def __init__(self, hf, key):
        super().__init__()
        self.hf, self.key = hf, key
    def forward(self, x): return self.hf(**{self.key: x}).logits

def build(name:str, size:int):
    "(plain network in eval mode, example input, placement description)."
    import torchvision
    if name in CNNS or name == 'vit_b_16':
        m = getattr(torchvision.models, name)(weights=None)
        s = 224 if name == 'vit_b_16' else size
        return m.eval(), torch.randn(1, 3, s, s), None
    import transformers as T
    if name == 'hf_vit':
        cfg = T.ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, num_labels=10)
        return Out(T.ViTForImageClassification(cfg), 'pixel_values').eval(), torch.randn(1, 3, 32, 32), None
    ids = torch.randint(0, 100, (1, 16), generator=torch.Generator().manual_seed(0))
    if name == 'hf_bert':
        cfg = T.BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, num_labels=3)
        return Out(T.BertForSequenceClassification(cfg), 'input_ids').eval(), ids, None
    if name == 'hf_gpt2':
        cfg = T.GPT2Config(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=64)
        return Out(T.GPT2LMHeadModel(cfg), 'input_ids').eval(), ids, None
    if name == 'hf_llama':
        cfg = T.LlamaConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            intermediate_size=128, max_position_embeddings=64)
        return Out(T.LlamaForCausalLM(cfg), 'input_ids').eval(), ids, None
    raise ValueError(f"unknown network {name!r}; choose from {', '.join(NETWORKS)}")

def place(name, m, x):
    "Gates by the presets; returns (placement description, modules skipped)."
    from bmrs.models import add_gates
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if name == 'convnext_tiny':   # no BatchNorm: the expansion Linear of each block's MLP (channels last)
            add_gates(m, after=lambda n, l: isinstance(l, nn.Linear) and l.out_features > l.in_features, axis=-1)
            return "after each block's expansion Linear", m.bmrs_gates_skipped
        if name in CNNS:
            add_gates(m, 'cnn', coupled=True, example_input=x)
            return "'cnn', coupled", m.bmrs_gates_skipped
        target = m.hf if isinstance(m, Out) else m
        add_gates(target, 'mlp'); skipped = dict(target.bmrs_gates_skipped)
        add_gates(target, 'heads', n_heads=getattr(getattr(target, 'config', None), 'num_attention_heads', None)); skipped |= target.bmrs_gates_skipped
        return "'mlp' + 'heads'", skipped

def _width(mod):
    "Output units of a (possibly reduced) gated layer, or None."
    from bmrs.models import HeadGated, is_conv1d
    if isinstance(mod, nn.Sequential) and len(mod) and not isinstance(mod, HeadGated): mod = mod[0]
    if isinstance(mod, nn.modules.batchnorm._BatchNorm): return mod.num_features
    if isinstance(mod, nn.Linear): return mod.out_features
    if isinstance(mod, nn.modules.conv._ConvNd): return mod.out_channels
    if is_conv1d(mod): return mod.nf
    return None

def _heads(mod, head_dim):
    "Heads left at a head gate's place: the output projection's inputs / head_dim."
    from bmrs.models import HeadGated, _in_out
    if isinstance(mod, HeadGated): mod = mod.layer
    if isinstance(mod, nn.Sequential): mod = next(c for c in mod if isinstance(c, nn.Linear) or type(c).__name__ == 'Conv1D')
    return _in_out(mod)[0]//head_dim

def places(model):
    "[(name of the gated place, kind, head_dim, gate)] of an untied gated model."
    from bmrs.models import Gated, HeadGated
    out = []
    for n, mod in model.named_modules():
        if isinstance(mod, HeadGated): out.append((n, 'heads', mod.head_dim, mod.gate))
        elif isinstance(mod, Gated): out.append((n, 'units', None, mod.gate))
    return out

def removed(plc, net):
    "Units removed at each place of `plc` in `net` (a reduced or pruned copy)."
    tot = 0
    for n, kind, hd, g in plc:
        try: mod = net.get_submodule(n)
        except AttributeError: return None
        w = _heads(mod, hd) if kind == 'heads' else _width(mod)
        if w is None: return None
        tot += g.n_units - w
    return tot

def timed(models:list, x, reps:int):
    "Median ms of one forward of each model, timed interleaved (one thread)."
    ts = [[] for _ in models]
    with torch.no_grad():
        for m in models: m(x)
        for _ in range(reps):
            for i, m in enumerate(models):
                t = time.perf_counter(); m(x); ts[i].append(1e3*(time.perf_counter() - t))
    return [statistics.median(t) for t in ts]

LIMIT_S = 300   # seconds one step (reduce, or Torch-Pruning) may take on one network (--limit)

@contextlib.contextmanager
def deadline(what):
    "Raise TimeoutError in the block after `LIMIT_S` seconds (SIGALRM; the main thread)."
    def stop(signum, frame): raise TimeoutError(f"{what} took longer than {LIMIT_S} s: stopped")
    old = signal.signal(signal.SIGALRM, stop); signal.alarm(LIMIT_S)
    try: yield
    finally: signal.alarm(0); signal.signal(signal.SIGALRM, old)

def rel_diff(y, z): return float((y - z).abs().max())/max(1., float(y.abs().max()))

def run(name, size, reps, seed=0):
    from bmrs.models import untie_gates
    from bmrs.layers import gates, param_count, param_compression
    from bmrs.reduce import reduce, macs, reduced_param_compression
    from bmrs import tp as btp
    torch.manual_seed(seed)
    plain, x, _ = build(name, size)
    m = copy.deepcopy(plain)
    row = dict(network=name, input=list(x.shape))
    row['placement'], skipped = place(name, m, x)
    row['skipped'] = skipped
    gs = gates(m)
    gen = torch.Generator().manual_seed(seed)
    for g in gs: g.mask[torch.randperm(g.n_units, generator=gen)[:g.n_units//2]] = 0
    row['gates'], row['units'] = len(gs), sum(g.n_units for g in gs)
    u = untie_gates(m).eval()
    for g in gates(u): g.threshold = math.inf      # BMRS_N keeps ΔF < threshold: the masks alone decide
    plc = places(u)
    row['places'], row['masked'] = len(plc), sum(int((g.mask == 0).sum()) for *_, g in plc)
    with torch.no_grad(): y = u(x)
    row['params_before'], row['params_gated'] = param_count(plain), param_count(u)
    row['macs_before'] = macs(plain, x)[0]
    try:
        with deadline('reduce'): r = reduce(u, x, atol=math.inf)
        with torch.no_grad(): row['logit_diff'] = rel_diff(y, r(x))
        row['removed'] = removed(plc, r)
        row['params_after'], row['macs_after'] = param_count(r), macs(r, x)[0]
        row['real_param_compression'] = 100*(row['params_gated'] - row['params_after'])/row['params_gated']
        # the count of the plan `reduce` applied, from shapes, without building anything
        row['plan_param_compression'] = reduced_param_compression(u, plan=r.bmrs_plan)
        # what training records and logs report: the pruned units' share, from the same plan (kept units' gates not counted)
        row['param_compression'] = param_compression(u, plan=r.bmrs_plan)
        row['method'] = r.bmrs_plan.get('method')
        row['latency_ms_before'], row['latency_ms_after'] = timed([plain, r], x, reps)
        reasons = getattr(r, 'bmrs_plan', {}).get('reasons') if isinstance(getattr(r, 'bmrs_plan', None), dict) else None
        if reasons: row['reasons'] = {k: v for k, v in list(reasons.items())[:20]}
    except Exception as e:
        row['reduce_error'] = f"{type(e).__name__}: {str(e)[:300]}"
    try:
        p = copy.deepcopy(u)
        with warnings.catch_warnings(), deadline('Torch-Pruning'):
            warnings.simplefilter('ignore'); btp.prune(p, x)
        with torch.no_grad(): row['tp_logit_diff'] = rel_diff(y, p(x))
        row['tp_removed'] = removed(plc, p)
        row['tp_params_after'] = param_count(p, gates_too=False)
        row['tp_macs_after'] = macs(p, x)[0]
    except Exception as e:
        row['tp_error'] = f"{type(e).__name__}: {str(e)[:300]}"
    return row

def _f(v, fmt): return '—' if v is None else format(v, fmt)

# why Torch-Pruning removes fewer units than `reduce` on a network, shown when it does
TP_NOTES = {'densenet121': "Torch-Pruning removes a channel only where every gate that reads it prunes it (a DenseNet feature "
                           "is read by every later layer through the concatenation); it cannot fold a channel a gate zeroes "
                           "before the concatenation, which the BatchNorms after it turn into a constant, into the next layers as reduce does"}

# why `reduce` keeps masked units on a network, where the architecture decides it
REDUCE_NOTES = {'densenet121': "the architecture: a DenseNet layer's output is concatenated into the input of every later layer of its "
                               "block; a gate after a layer's first BatchNorm zeroes a feature for that layer only, and the feature "
                               "stays wherever another layer reads it non-zero",
                'convnext_tiny': "the gate on the classifier: the network's 1,000 logits stay"}

def markdown(rows, header):
    "The README-ready table."
    out = [header, '',
           '| network | gates (places) | units masked | removed / masked | params before → after (M) | params removed %: real (`param_compression`) | MACs before → after (M) | max logit diff | latency before → after (ms) | Torch-Pruning: removed / masked, params after (M), logit diff |',
           '|---|---|---|---|---|---|---|---|---|---|']
    notes = []
    for r in rows:
        rm = r.get('removed'); tr = r.get('tp_removed'); ms = r.get('masked') or 0
        red = (f"{rm/ms:.2f}" if rm is not None and ms else '—') if 'reduce_error' not in r else 'error¹'
        tpc = (f"{tr/ms:.2f}, {_f(r.get('tp_params_after', 0)/1e6, '.3f')}, {_f(r.get('tp_logit_diff'), '.1e')}"
               if 'tp_error' not in r and tr is not None and ms else
               'refused¹' if str(r.get('tp_error', '')).startswith('ValueError') else 'error¹')
        out.append(f"| {r['network']} | {r.get('gates', '—')} ({r.get('places', '—')}) | {ms} | {red} | "
                   f"{r['params_before']/1e6:.3f} → {_f(r['params_after']/1e6 if 'params_after' in r else None, '.3f')} | "
                   f"{_f(r.get('real_param_compression'), '.1f')} ({_f(r.get('param_compression'), '.1f')}) | {r['macs_before']/1e6:.1f} → {_f(r['macs_after']/1e6 if 'macs_after' in r else None, '.1f')} | "
                   f"{_f(r.get('logit_diff'), '.1e')} | {_f(r.get('latency_ms_before'), '.2f')} → {_f(r.get('latency_ms_after'), '.2f')} | {tpc} |")
        for k in ('reduce_error', 'tp_error'):
            if k in r: notes.append(f"* {r['network']}, {k.split('_')[0]}: {r[k]}")
        if r['network'] in TP_NOTES and rm is not None and tr is not None and tr < rm:
            notes.append(f"* {r['network']}, tp: removes {tr} units, reduce {rm}: {TP_NOTES[r['network']]}")
        if rm is not None and rm < ms and r.get('reasons'):   # why masked units stay: the plan's reason per gate (all of them in zoo.json)
            first = next(iter(r['reasons'].items()))
            notes.append(f"* {r['network']}, reduce: {ms - rm} of {ms} masked units stay" + (f" ({REDUCE_NOTES[r['network']]})" if r['network'] in REDUCE_NOTES else '')
                         + f"; e.g. gate {first[0]}: {first[1][:240]}{'…' if len(first[1]) > 240 else ''}")
        if r.get('skipped'): notes.append(f"* {r['network']}: not gated, parent reads the weights: {len(r['skipped'])} module(s), e.g. {next(iter(r['skipped']))}")
    if notes: out += ['', '¹ and notes:', ''] + notes
    return '\n'.join(out) + '\n'

def main(argv=None):
    global LIMIT_S
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--networks', nargs='+', default=list(NETWORKS), choices=NETWORKS)
    ap.add_argument('--size', type=int, default=224, help="torchvision CNNs' input height = width (vit_b_16: always 224)")
    ap.add_argument('--reps', type=int, default=5, help='interleaved latency rounds')
    ap.add_argument('--out', default='results/zoo')
    ap.add_argument('--limit', type=int, default=300, help='seconds reduce (and Torch-Pruning) may take on one network')
    ap.add_argument('--merge', action='store_true', help="replace only these networks' rows in the existing zoo.json (each run's command kept)")
    ap.add_argument('--render', action='store_true', help="only write zoo.md again from the existing zoo.json (nothing is run)")
    a = ap.parse_args(argv)
    if a.render:
        from bmrs.files import read_json
        old = read_json(Path(a.out)/'zoo.json', 'zoo results')
        return write(Path(a.out), old.get('runs') or [old['meta']], old['rows'], old['meta'])
    LIMIT_S = a.limit
    torch.set_num_threads(1)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in a.networks:
        t = time.time()
        try: rows.append(run(n, a.size, a.reps))
        except Exception as e: rows.append(dict(network=n, error=f"{type(e).__name__}: {e}", params_before=0, macs_before=0))
        rows[-1]['seconds'] = round(time.time() - t, 1)
        print(n, json.dumps({k: v for k, v in rows[-1].items() if k not in ('skipped', 'reasons')}), flush=True)
    import transformers
    from importlib.metadata import version
    meta = dict(command='python ' + ' '.join([sys.argv[0]] + (argv if argv is not None else sys.argv[1:])),
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                machine=f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
                torch=torch.__version__, transformers=transformers.__version__, torch_pruning=version('torch-pruning'), threads=1,
                networks=[r['network'] for r in rows])
    runs = [meta]
    if a.merge:   # keep the rows of the networks not run now, with the runs that made them
        from bmrs.files import read_json
        old = read_json(out/'zoo.json', 'zoo results')
        old_runs = old.get('runs') or [old['meta']]
        for r in old_runs: r.setdefault('networks', [x['network'] for x in old['rows']])
        now = {r['network'] for r in rows}
        kept = [r for r in old['rows'] if r['network'] not in now]
        rows = sorted(kept + rows, key=lambda r: NETWORKS.index(r['network']) if r['network'] in NETWORKS else len(NETWORKS))
        for r in old_runs: r['networks'] = [n for n in r['networks'] if n not in now]
        runs = [r for r in old_runs if r['networks']] + [meta]
    write(out, runs, rows, meta, json_too=True)

def write(out:Path, runs, rows, meta, json_too=False):
    "zoo.json (`json_too`) and zoo.md from the rows and the runs that made them."
    from bmrs.files import write_atomic
    if json_too: write_atomic(out/'zoo.json', json.dumps(dict(meta=meta, runs=runs, rows=rows), indent=1, default=str))
    made = '; '.join(f"`{r['command']}` on {r['machine']}, {r['date']} (torch {r['torch']}, transformers {r['transformers']}, "
                     f"Torch-Pruning {r['torch_pruning']})" + (f": rows {', '.join(r['networks'])}" if len(runs) > 1 else '') for r in runs)
    header = (f"Random weights, a random half of each gate's units masked, batch 1, one thread. {made}. "
              "\"removed / masked\": units that disappear at the gated places; "
              "\"real\": share of the gated network's parameters that `reduce` removes (counted on the reduced network; its plan's "
              "count `reduced_param_compression` is recorded beside it and equal), and in brackets `param_compression`, the share "
              "training records and logs report (the same plan's count less the kept units' gates, which `reduce` folds away); "
              "latency: the plain unpruned "
              "network vs the reduced one, interleaved medians on a shared machine (noisy). Torch-Pruning: `bmrs.tp.prune` on the same "
              "masks (channels through its dependency graph, heads through its MetaPruner's head options); \"refused\": what it "
              "cannot do, with the reason.")
    write_atomic(out/'zoo.md', markdown(rows, header))

if __name__ == '__main__': main()

"""`bmrs.hf.BMRSTrainer` with two processes (torchrun, gloo on the CPU): one optimiser step's gradients equal the mean
of the two ranks' single-process gradients of mean cross-entropy + KL under the same noise (the KL counted once, not
twice nor halved); each rank draws its own noise; parameters and masks end identical on both ranks. Run as a script
by torchrun (`python -m torch.distributed.run ... tests/test_hf.py worker OUT`), this file is the 2-process worker."""
import copy, os, subprocess, sys
from pathlib import Path

import pytest
import torch

SEED, N, BS, GA = 3, 16, 4, 2       # 16 examples = one optimiser step of 2 ranks × 2 micro-batches × 4 examples


def model():
    "The test's tiny ViT with BMRS_U-4 gates; units 0-2 of the first gate start pruned by the criterion."
    from transformers import ViTConfig, ViTForImageClassification
    from bmrs.hf import gate_hf
    from bmrs.layers import gates
    torch.manual_seed(0)
    m = ViTForImageClassification(ViTConfig(image_size=8, patch_size=4, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                            intermediate_size=16, num_channels=1, num_labels=3))
    gate_hf(m, p1=4)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for gt in gates(m):
            gt.mu.copy_(torch.rand(gt.n_units, generator=g)*3 - 2); gt.logsigma.copy_(torch.rand(gt.n_units, generator=g)*3 - 3)
        gates(m)[0].mu[:3] = -15.
    return m


def data():
    from bmrs.data import TensorData
    g = torch.Generator().manual_seed(2)
    return TensorData(torch.randn(N, 1, 8, 8, generator=g), torch.randint(0, 3, (N,), generator=g))


# ---------------------------------------------------------------- the worker torchrun starts (2 processes)
def worker(out):
    import tempfile
    from transformers import TrainerCallback, TrainingArguments
    from bmrs.hf import BMRSCallback, BMRSTrainer, ImageDataset
    from bmrs.layers import gates
    rank = int(os.environ['RANK'])
    m = model()
    seen, got = [], {}

    def hook(mod, args, kwargs):   # fixed noise per rank and micro-batch; record the micro-batch
        got.setdefault('seed_at_first_forward', torch.initial_seed())
        torch.manual_seed(1000 + 10*rank + len(seen)); seen.append((kwargs['pixel_values'].clone(), kwargs['labels'].clone()))
    m.register_forward_pre_hook(hook, with_kwargs=True, prepend=True)   # before the gates' one draw

    class Grads(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
            got.setdefault('grads', {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, use_cpu=True, ddp_backend='gloo', report_to=[], save_strategy='no', disable_tqdm=True,
                                 logging_strategy='no', dataloader_pin_memory=False, per_device_train_batch_size=BS,
                                 gradient_accumulation_steps=GA, num_train_epochs=1, max_grad_norm=0., learning_rate=1e-3, seed=SEED)
        t = BMRSTrainer(model=m, args=args, train_dataset=ImageDataset(data()), callbacks=[Grads(), BMRSCallback(every=1)])
        t.train()
        got.update(world_size=args.world_size, steps=t.state.global_step, batches=seen,
                   state={k: v.clone() for k, v in m.state_dict().items()}, masks=[g.mask.clone() for g in gates(m)])
    torch.save(got, Path(out)/f'rank{rank}.pt')


# ---------------------------------------------------------------- the test
def test_ddp_step_counts_kl_once(tmp_path):
    from bmrs.layers import model_kl
    import torch.nn.functional as F
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', __file__, 'worker', str(tmp_path)]
    env = dict(os.environ, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    r = [torch.load(tmp_path/f'rank{i}.pt', weights_only=True) for i in (0, 1)]
    assert [x['world_size'] for x in r] == [2, 2] and [x['steps'] for x in r] == [1, 1]
    assert [x['seed_at_first_forward'] for x in r] == [SEED, SEED + 1]        # each rank its own noise
    assert sorted(torch.cat([torch.cat([xx for xx, _ in x['batches']]) for x in r]).flatten().tolist()) == \
        sorted(data().x.flatten().tolist())                                    # the ranks' shards are disjoint and cover the data
    for k in r[0]['state']: assert torch.equal(r[0]['state'][k], r[1]['state'][k]), k
    assert all(torch.equal(a, b) for a, b in zip(r[0]['masks'], r[1]['masks']))
    assert int((r[0]['masks'][0] == 0).sum()) >= 3                            # the compression pruned (same masks on both)
    for k in r[0]['grads']: assert torch.equal(r[0]['grads'][k], r[1]['grads'][k]), k
    # the reference: per rank, one backward pass of mean CE over its 8 examples + KL, same noise; then the mean over ranks
    want = None
    for rank, x in enumerate(r):
        ref = model(); ref.train()
        ce = 0.
        for i, (px, y) in enumerate(x['batches']):
            torch.manual_seed(1000 + 10*rank + i)
            ce = ce + F.cross_entropy(ref(pixel_values=px).logits, y, reduction='sum')
        (ce/sum(len(y) for _, y in x['batches']) + model_kl(ref, 'mean')).backward()
        g = {n: p.grad/2 for n, p in ref.named_parameters() if p.grad is not None}
        want = g if want is None else {n: want[n] + g[n] for n in g}
    assert set(want) == set(r[0]['grads'])
    for n in want: assert float((r[0]['grads'][n] - want[n]).abs().max()) < 1e-6, n


if __name__ == '__main__' and len(sys.argv) > 2 and sys.argv[1] == 'worker':
    worker(sys.argv[2])

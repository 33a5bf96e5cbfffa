"""The Torch-Pruning column of `benchmarks/zoo.py` on tiny configurations of its networks: `bmrs.tp.prune` (Torch-Pruning
1.6.1's surgery on the channels / heads the gates prune) against the masked network's logits and an independent count —
`bmrs.reduce.reduce`'s parameter count, or a hand count where Torch-Pruning removes less by design (DenseNet).

The networks are placed as the zoo places them (`zoo.place`), a random half of every gate's units masked, the masks alone
deciding (threshold +inf). Random weights, CPU, one thread; no downloads."""
import copy, math, sys
from pathlib import Path
import pytest
import torch
from torch import nn
from bmrs.layers import gates, param_count
from bmrs.models import untie_gates
from bmrs.reduce import reduce
from bmrs import tp as btp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'benchmarks'))
import zoo   # noqa: E402

torchvision = pytest.importorskip('torchvision')
torch.set_num_threads(1)


def masked(name, m, x, seed=0):
    "`m` gated as the zoo gates network `name`, a random half of each gate's units masked, untied; (network, places)."
    zoo.place(name, m, x)
    gen = torch.Generator().manual_seed(seed)
    for g in gates(m): g.mask[torch.randperm(g.n_units, generator=gen)[:g.n_units//2]] = 0
    u = untie_gates(m).eval()
    for g in gates(u): g.threshold = math.inf   # BMRS_N keeps ΔF < threshold: the masks alone decide
    return u, zoo.places(u)


def tp_pruned(u, x):
    "(Torch-Pruning's copy of `u`, its logits' largest difference from `u`'s, relative)."
    with torch.no_grad(): y = u(x)
    p = copy.deepcopy(u)
    btp.prune(p, x)
    with torch.no_grad(): z = p(x)
    assert z.shape == y.shape
    return p, zoo.rel_diff(y, z)


def test_convnext():
    "A gate after the classifier masks logits: Torch-Pruning keeps them (as reduce does) and equals reduce's count."
    from torchvision.models.convnext import ConvNeXt, CNBlockConfig
    torch.manual_seed(0)
    net = ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)], layer_scale=.5, num_classes=64).eval()
    x = torch.randn(1, 3, 32, 32)
    u, plc = masked('convnext_tiny', net, x)
    assert any(n.startswith('classifier') for n, *_ in plc)   # the classifier's Linear (32 -> 64) widens: gated, as 768 -> 1000
    p, d = tp_pruned(u, x)
    assert d <= 1e-5
    r = reduce(u, x)
    assert param_count(p, gates_too=False) == param_count(r)
    assert zoo.removed(plc, p) == zoo.removed(plc, r) == sum(int((g.mask == 0).sum()) for *_, g in plc) - 32   # the 32 masked logits stay


def densenet_hand(net, masks):
    """(units removed at the gated places, parameters left) of Torch-Pruning on a torchvision DenseNet, by hand: a channel
    of a concatenation is removed at its producer, so only when every gate reading it masks it (`masks`: {BN name: masked})."""
    f, readers, reads = net.features, {}, {}
    def read(place, stream):
        reads[place] = list(stream)
        for i, s in enumerate(stream): readers.setdefault(s, []).append(masks[place][i])
    stream = [('features.conv0', j) for j in range(f.conv0.out_channels)]
    read('features.norm0', stream)
    layers = []   # (kind, name, input stream, own output sources)
    for bn, blk in f.named_children():
        if bn.startswith('denseblock'):
            for ln, l in blk.named_children():
                n = f'features.{bn}.{ln}'
                read(f'{n}.norm1', stream)
                mid = [(f'{n}.conv1', j) for j in range(l.conv1.out_channels)]
                read(f'{n}.norm2', mid)
                new = [(f'{n}.conv2', j) for j in range(l.conv2.out_channels)]
                layers.append(('dense', stream, mid, new))
                stream = stream + new
        elif bn.startswith('transition'):
            read(f'features.{bn}.norm', stream)
            new = [(f'features.{bn}.conv', j) for j in range(blk.conv.out_channels)]
            layers.append(('transition', stream, None, new)); stream = new
    read('features.norm5', stream)
    gone = {s for s, ms in readers.items() if all(ms)}
    def kept(ss): return sum(s not in gone for s in ss)
    removed = sum(len(ss) - kept(ss) for ss in reads.values())
    c0 = kept([s for s in readers if s[0] == 'features.conv0'])
    params = f.conv0.in_channels*49*c0 + 2*c0
    for kind, inp, mid, new in layers:
        n, k = kept(inp), kept(new)
        params += (2*n + kept(mid)*n + 2*kept(mid) + k*kept(mid)*9) if kind == 'dense' else 2*n + k*n
    n = kept(stream)
    return removed, params + 2*n + net.classifier.out_features*(n + 1)


def test_densenet():
    "Torch-Pruning removes a concatenated channel only at its producer: the hand count of that rule, and the logits."
    from torchvision.models import DenseNet
    torch.manual_seed(0)
    net = DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2, num_classes=5).eval()
    x = torch.randn(1, 3, 32, 32)
    u, plc = masked('densenet121', net, x)
    p, d = tp_pruned(u, x)
    assert d <= 1e-5
    masks = {n: (g.mask == 0).tolist() for n, _, _, g in plc}
    removed, params = densenet_hand(net, masks)
    assert 0 < removed < sum(int((g.mask == 0).sum()) for *_, g in plc)   # some, not all: readers disagree
    assert zoo.removed(plc, p) == removed
    assert param_count(p, gates_too=False) == params


T = None
def hf():
    global T
    T = T or pytest.importorskip('transformers')   # the 'hf' extra
    return T


@pytest.mark.parametrize('name', ['hf_vit', 'hf_bert'])
def test_hf_heads(name):
    "Heads through MetaPruner's head options and MLP units: reduce's parameter count, the masked logits."
    hf()
    torch.manual_seed(0)
    net, x, _ = zoo.build(name, 32)
    u, plc = masked(name, net, x)
    assert any(kind == 'heads' for _, kind, _, _ in plc)
    p, d = tp_pruned(u, x)
    assert d <= 1e-5
    r = reduce(u, x)
    assert param_count(p, gates_too=False) == param_count(r)
    assert zoo.removed(plc, p) == zoo.removed(plc, r) == sum(int((g.mask == 0).sum()) for *_, g in plc)


def test_hf_llama_mha():
    "Llama's rotary attention without grouped-query attention, traced with use_cache=False: reduce's count, the logits."
    T = hf()
    torch.manual_seed(0)
    cfg = T.LlamaConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                        intermediate_size=128, max_position_embeddings=64)
    class NoCache(zoo.Out):
        def forward(self, x): return self.hf(input_ids=x, use_cache=False).logits
    net, x = NoCache(T.LlamaForCausalLM(cfg), 'input_ids').eval(), torch.randint(0, 100, (1, 16), generator=torch.Generator().manual_seed(0))
    u, plc = masked('hf_llama', net, x)
    p, d = tp_pruned(u, x)
    assert d <= 1e-5
    r = reduce(u, x)
    assert param_count(p, gates_too=False) == param_count(r)
    assert zoo.removed(plc, p) == zoo.removed(plc, r)


@pytest.mark.parametrize('name, msg', [
    ('hf_llama', "head gate 'hf.model.layers.0.self_attn.o_proj.0': grouped-query attention (2 query heads per key/value head): "
                 "Torch-Pruning 1.6.1 removes as many query heads from every key/value group"),
    ('hf_gpt2', "'hf.transformer.h.0.attn.c_attn' is transformers' Conv1D (GPT-2): Torch-Pruning 1.6.1 has no pruner for it")])
def test_hf_refused(name, msg):
    "What Torch-Pruning 1.6.1 cannot do is refused with its reason, before anything is changed."
    hf()
    torch.manual_seed(0)
    net, x, _ = zoo.build(name, 32)
    u, _ = masked(name, net, x)
    before = {k: v.clone() for k, v in u.state_dict().items()}
    with pytest.raises(ValueError, match='^' + msg.replace('(', r'\(').replace(')', r'\)')):
        btp.prune(u, x)
    after = u.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)

"""`bmrs.reduce` beyond the paper's networks: grouped / depthwise convolutions, concatenation / split / chunk, reshapes
and permutes, products of two tensors, and Hugging Face BERT, GPT-2, ViT and a Llama block with grouped-query attention.

Each network is tiny and random; a random half of every gate's units is masked (gates of equal width share one subset,
so coupled gates agree). Checked: reduced logits equal the masked gated logits within 1e-5 (relative); at least 90 % of
the masked units are physically removed, or the per-gate reason is the one the architecture calls for; the parameters
removed equal the plan's count and the parameter count of the reduced network (`n_params` difference)."""
import copy
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from bmrs.layers import NoiseGate, gates, param_count
from bmrs.models import Gated, add_gates, n_params
from bmrs.reduce import (reduce, check_reduced, plan_removed_params, reduced_param_compression, true_param_compression,
                         save_reduced, load_reduced)

torch.set_num_threads(1)


def mask_half(net, seed=0, heads=None):
    "Random E[theta] and a random half of every gate's units masked; `heads`: {gate: head size} masked head by head."
    gen, subsets = torch.Generator().manual_seed(seed), {}
    heads = heads or {}
    with torch.no_grad():
        for name, g in net.named_modules():
            if not isinstance(g, NoiseGate): continue
            g.mu.copy_(torch.empty(g.n_units).uniform_(-1.5, 0.5, generator=gen))
            hd = heads.get(name, 1)
            n = g.n_units//hd
            key = (n, hd)
            if key not in subsets: subsets[key] = torch.randperm(n, generator=gen)[:n//2]
            m = torch.ones(n); m[subsets[key]] = 0.
            g.mask.copy_(m.repeat_interleave(hd))
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-.5, .5, generator=gen); m.running_var.uniform_(.5, 2, generator=gen)
                m.bias.uniform_(-.5, .5, generator=gen)
    return net.eval()


def removed_share(net, red):
    "Share of masked units that the reduction removed."
    masked = sum(e['n_masked'] for e in red.bmrs_plan['gates'].values())
    gone = sum(e['n_units'] - len(e['kept']) for e in red.bmrs_plan['gates'].values())
    return gone/masked if masked else 1.


def check(net, x, min_share=.9):
    "Reduce `net` on `x`; the logits, the share removed and the parameter counts; returns the reduced network."
    red = reduce(net, x)
    assert check_reduced(net, red, x, atol=1e-5) <= 1e-5
    assert not gates(red)
    assert plan_removed_params(net, red.bmrs_plan) == n_params(net, trainable=False) - n_params(red, trainable=False)
    assert abs(reduced_param_compression(net, x) - 100*(param_count(net) - param_count(red))/param_count(net)) < 1e-9
    if min_share is not None: assert removed_share(net, red) >= min_share, red.bmrs_plan['reasons']
    return red


def gated_bn(c): return Gated(nn.BatchNorm2d(c), NoiseGate(c))


# --- convolutional kinds ---------------------------------------------------------------------------------------------

class Depthwise(nn.Module):
    "MobileNet-style: 1x1 expansion, depthwise 3x3, 1x1 projection, a gate after each BatchNorm."
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 1), gated_bn(8), nn.ReLU6(), nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                                  gated_bn(8), nn.ReLU6(), nn.Conv2d(8, 4, 1), gated_bn(4))
        self.head = nn.Linear(4, 5)
    def forward(self, x): return self.head(self.body(x).mean((2, 3)))


class Grouped(nn.Module):
    "A grouped 3x3 convolution (groups=2) between two gated 1x1 convolutions."
    def __init__(self):
        super().__init__()
        self.a, self.bn = nn.Conv2d(3, 8, 1), gated_bn(8)
        self.g = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.head = nn.Linear(8, 5)
    def forward(self, x): return self.head(self.g(F.relu(self.bn(self.a(x)))).mean((2, 3)))


class CatSplit(nn.Module):
    "chunk into two branches, each a conv + BN + gate, concatenated, split in halves again and summed by two consumers."
    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, 8, 1), gated_bn(8)
        self.b1, self.bn1 = nn.Conv2d(4, 6, 3, padding=1), gated_bn(6)
        self.b2, self.bn2 = nn.Conv2d(4, 6, 3, padding=1), gated_bn(6)
        self.c1, self.c2 = nn.Conv2d(6, 4, 1), nn.Conv2d(6, 4, 1)
        self.head = nn.Linear(4, 5)
    def forward(self, x):
        u, v = torch.chunk(F.relu(self.bn0(self.stem(x))), 2, dim=1)
        y = torch.cat([F.relu(self.bn1(self.b1(u))), F.relu(self.bn2(self.b2(v)))], 1)
        p, q = torch.split(y, y.shape[1]//2, dim=1)
        return self.head((self.c1(p) + self.c2(q)).mean((2, 3)))


class Permuted(nn.Module):
    "ConvNeXt-style channels-last MLP: conv + BN + gate, permute, Linear expansion + gate, Linear, permute back."
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 6, 3, padding=1), gated_bn(6)
        self.up, self.down = Gated(nn.Linear(6, 12), NoiseGate(12, axis=-1)), nn.Linear(12, 4)
        self.head = nn.Linear(4*8*8, 5)
    def forward(self, x):
        y = F.relu(self.bn(self.conv(x))).permute(0, 2, 3, 1)
        y = self.down(F.gelu(self.up(y))).permute(0, 3, 1, 2)
        return self.head(y.reshape(y.shape[0], -1))


class SqueezeExcite(nn.Module):
    "conv + BN + gate, then x * sigmoid(fc(pool(x))) (a product of two tensors), then a conv."
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), gated_bn(8)
        self.fc1, self.fc2 = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
        self.out, self.head = nn.Conv2d(8, 4, 1), nn.Linear(4, 5)
    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(y.mean((2, 3), keepdim=True)))))
        return self.head(self.out(y*s).mean((2, 3)))


class DenseBlock(nn.Module):
    "DenseNet-style: features concatenated and normalised again by the next layer's BatchNorm."
    def __init__(self):
        super().__init__()
        self.conv0, self.bn0 = nn.Conv2d(3, 4, 3, padding=1), gated_bn(4)
        self.norm1, self.conv1 = nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1)
        self.norm2, self.conv2 = nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1)
        self.head = nn.Linear(4, 5)
    def forward(self, x):
        f0 = F.relu(self.bn0(self.conv0(x)))
        f1 = self.conv1(F.relu(self.norm1(f0)))
        return self.head(self.conv2(F.relu(self.norm2(torch.cat([f0, f1], 1)))).mean((2, 3)))


class Shuffle(nn.Module):
    "ShuffleNet-style channel shuffle (view, transpose, view) between two gated convolutions."
    def __init__(self):
        super().__init__()
        self.a, self.bn = nn.Conv2d(3, 8, 1), gated_bn(8)
        self.b, self.head = nn.Conv2d(8, 4, 1), nn.Linear(4, 5)
    def forward(self, x):
        y = F.relu(self.bn(self.a(x)))
        n, c, h, w = y.shape
        y = y.view(n, 2, c//2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.head(self.b(y).mean((2, 3)))


X = torch.randn(2, 3, 8, 8)


@pytest.mark.parametrize('cls', [Depthwise, Permuted, SqueezeExcite])
def test_conv_kinds(cls):
    torch.manual_seed(0)
    net = mask_half(cls())
    red = check(net, X)
    assert red.bmrs_plan['method'] == 'graph'


class Concat(nn.Module):
    "Inception-style: two gated branches concatenated, read by one convolution."
    def __init__(self):
        super().__init__()
        self.b1, self.bn1 = nn.Conv2d(3, 6, 3, padding=1), gated_bn(6)
        self.b2, self.bn2 = nn.Conv2d(3, 4, 1), gated_bn(4)
        self.c, self.head = nn.Conv2d(10, 4, 1), nn.Linear(4, 5)
    def forward(self, x):
        y = torch.cat([F.relu(self.bn1(self.b1(x))), F.relu(self.bn2(self.b2(x)))], 1)
        return self.head(self.c(y).mean((2, 3)))


def test_concat():
    torch.manual_seed(0)
    net = mask_half(Concat())
    red = check(net, X, min_share=1.)
    assert (red.b1.out_channels, red.b2.out_channels, red.c.in_channels) == (3, 2, 5)


class UnevenChunk(nn.Module):
    "chunk(2) of 7 gated channels (pieces of 4 and 3), each piece read by its own convolution."
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 7, 1), gated_bn(7)
        self.c1, self.c2, self.head = nn.Conv2d(4, 4, 1), nn.Conv2d(3, 4, 1), nn.Linear(4, 5)
    def forward(self, x):
        a, b = torch.chunk(F.relu(self.bn(self.conv(x))), 2, 1)
        return self.head((self.c1(a) + self.c2(b)).mean((2, 3)))


def test_catsplit_removed():
    """chunk -> two branches -> cat -> split(y, y.shape[1]//2) -> two readers: bmrs maps the indices through both splits
    itself (Torch-Pruning 1.6 pairs the split's pieces with the wrong readers). Seed 1 masks units 0, 1 | 4, 7 of bn0,
    two in each half of the chunk, so every masked unit goes."""
    torch.manual_seed(0)
    net = mask_half(CatSplit(), seed=1)
    m = {n: net.get_submodule(n).mask for n in ('bn0.1', 'bn1.1', 'bn2.1')}
    assert torch.nonzero(m['bn0.1'] == 0).flatten().tolist() == [0, 1, 4, 7]
    assert int((m['bn0.1'][:4] == 0).sum()) == int((m['bn0.1'][4:] == 0).sum())   # the chunk's halves lose as many
    red = check(net, X, min_share=.9)
    assert removed_share(net, red) == 1. and red.bmrs_plan['reasons'] == {}
    k0, k1 = int(m['bn0.1'][:4].sum()), int(m['bn0.1'][4:].sum())   # kept per half of bn0
    k = int(m['bn1.1'].sum())                                        # bn1 and bn2 share the subset
    assert (red.stem.out_channels, red.b1.in_channels, red.b2.in_channels) == (k0 + k1, k0, k1)
    assert (red.b1.out_channels, red.b2.out_channels, red.c1.in_channels, red.c2.in_channels) == (k, k, k, k)


def test_catsplit_equal_pieces():
    """Seed 0 masks one unit of bn0's first half and three of its second: chunk(2) of the reduced tensor must still give
    equal pieces, so two masked units of the second half stay (the last two), with the reason; bn1 and bn2 go whole."""
    torch.manual_seed(0)
    net = mask_half(CatSplit())
    assert torch.nonzero(net.bn0[1].mask == 0).flatten().tolist() == [1, 4, 6, 7]
    red = check(net, X, min_share=None)
    plan = red.bmrs_plan
    assert plan['gates']['bn0.1']['kept'] == [0, 2, 3, 5, 6, 7]   # 1 and 4 go: one per half
    assert "2 of 4 masked units stay: 2 kept so that the chunk's pieces stay equal" == plan['reasons']['bn0.1']
    assert [len(plan['gates'][n]['kept']) for n in ('bn1.1', 'bn2.1')] == [3, 3] and set(plan['reasons']) == {'bn0.1'}
    assert abs(removed_share(net, red) - 8/10) < 1e-12   # 2 + 3 + 3 of 4 + 3 + 3 masked


def test_split_reason():
    """What is still not removed through a chunk: an uneven one (pieces of 4 and 3). The reduced network would compute
    its pieces again from the smaller tensor, and bmrs removes units through a split whose sizes follow the tensor
    only when its pieces are equal: every unit stays, with the reason."""
    torch.manual_seed(0)
    net = mask_half(UnevenChunk())
    red = check(net, X, min_share=None)
    e = red.bmrs_plan['gates']['bn.1']
    assert (e['n_masked'], len(e['kept'])) == (3, 7) and red.c1.in_channels == 4 and red.c2.in_channels == 3
    assert 'an uneven split / chunk (pieces of [4, 3])' in red.bmrs_plan['reasons']['bn.1'], red.bmrs_plan['reasons']


def test_depthwise_sliced():
    torch.manual_seed(0)
    red = check(mask_half(Depthwise()), X, min_share=1.)
    dw = red.body[3]
    assert dw.groups == dw.in_channels == dw.out_channels == 4 and red.body[0].out_channels == 4 and red.body[6].in_channels == 4


def test_grouped_reason():
    torch.manual_seed(0)
    red = check(mask_half(Grouped()), X, min_share=None)
    assert 'grouped convolution g (groups=2) would lose its group structure' in red.bmrs_plan['reasons']['bn.1']


def test_dense_reason():
    torch.manual_seed(0)
    red = check(mask_half(DenseBlock()), X, min_share=None)
    r = red.bmrs_plan['reasons']['bn0.1']
    assert 'reads them non-zero' in r and 'concatenation' in r, r


def test_shuffle_reason():
    "A channel shuffle moves units across groups: removing them there does not build the same network, and the gate says so."
    torch.manual_seed(0)
    red = check(mask_half(Shuffle()), X, min_share=None)
    assert 'changes the outputs or the shapes' in red.bmrs_plan['reasons']['bn.1'], red.bmrs_plan['reasons']


def test_torchvision_mobilenet_block():
    import torchvision
    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=5).eval()
    net.features = net.features[:4]   # stem and three inverted-residual blocks (one with a residual addition)
    net.classifier = nn.Linear(net.features[-1].out_channels, 5)
    add_gates(net, after=nn.BatchNorm2d)
    check(mask_half(net), torch.randn(2, 3, 32, 32))


# --- transformers ----------------------------------------------------------------------------------------------------

def gate_mlp(model, suffix, axis=-1):
    "A gate after every MLP expansion layer named `*suffix`."
    return add_gates(model, after=lambda n, m: n.endswith(suffix), axis=axis) if not suffix.endswith('c_fc') else _gate_conv1d(model, suffix)


def _gate_conv1d(model, suffix):
    for n, m in list(model.named_modules()):
        if n.endswith(suffix):
            parent, _, child = n.rpartition('.')
            setattr(model.get_submodule(parent), child, Gated(m, NoiseGate(m.weight.shape[1], axis=-1)))
    return model


def gate_heads(model, suffix, width):
    "A gate on the attention output before every o projection named `*suffix` (`width` units, masked head by head)."
    for n, m in list(model.named_modules()):
        if n.endswith(suffix) and not isinstance(m, (nn.Sequential, NoiseGate)):
            parent, _, child = n.rpartition('.')
            setattr(model.get_submodule(parent), child, nn.Sequential(NoiseGate(width, axis=-1), m))
    return model


def hf(name):
    "A tiny random Hugging Face model, its MLP and head gates, an example input."
    import transformers as t
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (2, 7))
    if name == 'bert':
        m = t.BertForSequenceClassification(t.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                          intermediate_size=48, max_position_embeddings=16, num_labels=3))
        gate_mlp(m, 'intermediate.dense'); gate_heads(m, 'attention.output.dense', 32)
        return m, ids, 'attention.output.dense.0', 8
    if name == 'gpt2':
        m = t.GPT2LMHeadModel(t.GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=4, n_positions=16))
        gate_mlp(m, 'mlp.c_fc'); gate_heads(m, 'attn.c_proj', 32)
        return m, ids, 'attn.c_proj.0', 8
    if name == 'vit':
        m = t.ViTForImageClassification(t.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                                                    image_size=16, patch_size=4, num_labels=3))
        gate_mlp(m, 'mlp.fc1'); gate_heads(m, 'attention.o_proj', 32)
        return m, torch.randn(2, 3, 16, 16), 'attention.o_proj.0', 8
    if name == 'llama':
        m = t.LlamaForCausalLM(t.LlamaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                             num_key_value_heads=2, intermediate_size=48, max_position_embeddings=16))
        gate_mlp(m, 'mlp.up_proj'); gate_heads(m, 'self_attn.o_proj', 32)
        return m, ids, 'self_attn.o_proj.0', 8
    raise ValueError(name)


def heads_of(model, suffix, hd):
    return {n: hd for n, g in model.named_modules() if n.endswith(suffix) and isinstance(g, NoiseGate)}


@pytest.mark.parametrize('name', ['bert', 'gpt2', 'vit'])
def test_transformers_heads_and_mlp(name):
    net, x, hsuf, hd = hf(name)
    mask_half(net, heads=heads_of(net, hsuf, hd))
    red = check(net, x)
    assert red.bmrs_plan['method'] == 'graph'
    assert type(red).__name__ == type(net).__name__ and not any(isinstance(m, nn.Sequential) and len(m) == 2 and isinstance(m[0], nn.Identity)
                                                               for m in red.modules())
    # heads of 8: 2 of 4 removed in every layer, the MLP halved
    if name == 'vit':   # ViT reads config.head_dim when it is set: the uniform reduction is expressible
        assert red.bmrs_plan['config'] == dict(expressible=True, changes=dict(intermediate_size=24, num_attention_heads=2, head_dim=8))
    else: assert red.bmrs_plan['config']['expressible'] is False and 'head size' in red.bmrs_plan['config']['note']


def test_llama_gqa():
    net, x, hsuf, hd = hf('llama')
    mask_half(net, heads=heads_of(net, hsuf, hd))
    red = check(net, x, min_share=None)
    rs = red.bmrs_plan['reasons']
    for n, e in red.bmrs_plan['gates'].items():   # MLP units all go; heads only as whole key/value groups
        if 'up_proj' in n: assert e['n_units'] - len(e['kept']) == e['n_masked']
        elif e['n_masked'] > e['n_units'] - len(e['kept']): assert 'grouped-query attention' in rs[n], rs


def test_llama_round_trip(tmp_path):
    "Whole key/value groups masked: a uniform reduction the config expresses; save_pretrained / from_pretrained round-trip."
    import transformers as t
    net, x, hsuf, hd = hf('llama')
    mask_half(net, heads={n: 16 for n in heads_of(net, hsuf, hd)})   # a head of 16 units = one key/value group of 2 query heads
    red = check(net, x, min_share=1.)
    assert (red.config.num_attention_heads, red.config.num_key_value_heads, red.config.intermediate_size, red.config.head_dim) == (2, 1, 24, 8)
    red.save_pretrained(tmp_path)
    back = t.LlamaForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad(): torch.testing.assert_close(back(x).logits, net(x).logits, rtol=1e-5, atol=1e-5)


def test_bert_save_reduced(tmp_path):
    "Head counts the BERT config cannot express: bmrs's own save / load, manifest-checked, gives the same logits."
    net, x, hsuf, hd = hf('bert')
    mask_half(net, heads=heads_of(net, hsuf, hd))
    red = reduce(net, x)
    save_reduced(red, tmp_path/'m')
    back = load_reduced(tmp_path/'m', base=copy.deepcopy(net))
    with torch.no_grad(): torch.testing.assert_close(back(x).logits, net(x).logits, rtol=1e-5, atol=1e-5)
    assert back.bert.encoder.layer[0].attention.self.num_attention_heads == 2


def test_gpt2_mlp_round_trip(tmp_path):
    "Only MLP units removed, the same number in every layer: n_inner follows, save_pretrained / from_pretrained round-trip."
    import transformers as t
    torch.manual_seed(0)
    net = t.GPT2LMHeadModel(t.GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=4, n_positions=16))
    gate_mlp(net, 'mlp.c_fc')
    mask_half(net)
    x = torch.randint(0, 50, (2, 7))
    red = check(net, x, min_share=1.)
    assert red.config.n_inner == 64 and red.bmrs_plan['config'] == dict(expressible=True, changes={'n_inner': 64})
    red.save_pretrained(tmp_path)
    back = t.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    with torch.no_grad(): torch.testing.assert_close(back(x).logits, net(x).logits, rtol=1e-5, atol=1e-5)


class LayerScale(nn.Module):
    "conv + BN + gate, multiplied by a learned per-channel scale (a parameter of the network, not of a layer), then a conv."
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 6, 3, padding=1), gated_bn(6)
        self.gamma = nn.Parameter(torch.rand(6, 1, 1) + .5)
        self.out, self.head = nn.Conv2d(6, 4, 1), nn.Linear(4, 5)
    def forward(self, x): return self.head(self.out(F.relu(self.bn(self.conv(x)))*self.gamma).mean((2, 3)))


def test_layer_scale(tmp_path):
    torch.manual_seed(0)
    net = mask_half(LayerScale())
    red = check(net, X, min_share=1.)
    assert red.gamma.shape == (3, 1, 1) and red.bmrs_plan['params']['gamma']['dim'] == 0
    save_reduced(red, tmp_path/'m')   # the plan's parameter entry rebuilds the same network
    back = load_reduced(tmp_path/'m', base=copy.deepcopy(net))
    with torch.no_grad(): torch.testing.assert_close(back(X), net(X), rtol=1e-5, atol=1e-5)


def test_gated_outputs_stay():
    """A gate on the network's last layer (add_gates after every Linear): with an example input, the dependency graph
    used to remove the masked logits too (the reduced network then had 3 outputs instead of 6 and failed its own check).
    The outputs stay, with the reason; the hidden layer loses its masked units (hand count)."""
    torch.manual_seed(0)
    net = add_gates(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6)), after=nn.Linear)
    with torch.no_grad():
        for g in gates(net): g.mask[:g.n_units//2] = 0
    x = torch.randn(3, 4)
    red = check(net.eval(), x, min_share=None)
    assert (red[0].out_features, red[2].in_features, red[2].out_features) == (4, 4, 6)
    assert n_params(red, trainable=False) == 4*4 + 4 + 4*6 + 6
    assert "reach the network's output" in red.bmrs_plan['reasons']['2.1']


def test_dict_example_input():
    "reduce checks its result on an example input given as the network's keyword arguments (a transformers batch)."
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(0)
    m = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                 intermediate_size=32, max_position_embeddings=16, num_labels=3))
    add_gates(m, after='mlp')
    with torch.no_grad():
        for g in gates(m): g.mask[:g.n_units//2] = 0
    x = {'input_ids': torch.randint(0, 50, (2, 8)), 'attention_mask': torch.ones(2, 8, dtype=torch.long)}
    red = reduce(m.eval(), x)
    assert red.bert.encoder.layer[0].intermediate.dense.out_features == 16
    assert check_reduced(m, red, x) <= 1e-5

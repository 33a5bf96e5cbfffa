"""`bmrs.reduce` on transformers models gated with the presets — `add_gates(m, 'mlp')` after the MLP expansion layer and
`add_gates(m, 'heads')`, one unit per head before the output projection (`HeadGated`): whole heads and MLP units are
removed by the transformers rules, without the dependency graph. BERT, GPT-2 (fused `Conv1D` c_attn), ViT and Llama
(grouped-query attention). Tiny random configs on the CPU; the masks are chosen by hand, so the counts are hand counts."""
import copy
import pytest
import torch
from torch import nn
import bmrs.reduce as R
from bmrs.layers import NoiseGate, gates
from bmrs.models import add_gates, Gated, HeadGated, n_params
from bmrs.reduce import reduce, check_reduced, plan_removed_params, reduced_param_compression, save_reduced, load_reduced

T = pytest.importorskip('transformers')   # the 'hf' extra
torch.set_num_threads(1)
IDS = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))


def build(name):
    "(tiny random model in eval mode, example input, heads per layer, head size, query heads per key/value head, layers)."
    torch.manual_seed(0)
    if name == 'bert':
        m = T.BertForSequenceClassification(T.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                         intermediate_size=64, max_position_embeddings=16, num_labels=3))
        return m.eval(), IDS, 4, 8, 1, m.bert.encoder.layer
    if name == 'gpt2':
        m = T.GPT2LMHeadModel(T.GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=4, n_positions=16, bos_token_id=0, eos_token_id=0))
        return m.eval(), IDS, 4, 8, 1, m.transformer.h
    if name == 'vit':
        m = T.ViTForImageClassification(T.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                                     image_size=16, patch_size=4, num_labels=3))
        return m.eval(), torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)), 4, 8, 1, m.vit.layers
    if name == 'llama':
        m = T.LlamaForCausalLM(T.LlamaConfig(vocab_size=50, hidden_size=48, num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
                                             intermediate_size=96, max_position_embeddings=16))
        return m.eval(), IDS, 6, 8, 3, m.model.layers
    raise ValueError(name)


def head_gates(net):
    "The head gates of `net`, layer by layer."
    return [m.gate for m in net.modules() if isinstance(m, HeadGated)]


def mlp_gates(net):
    "The MLP gates of `net`, layer by layer."
    return [m.gate for m in net.modules() if isinstance(m, Gated)]


def gated(name, heads_masked, mlp_masked=None, seed=0):
    """`build(name)` gated with the 'mlp' and 'heads' presets, random E[θ]; `heads_masked`: the masked heads of each layer;
    `mlp_masked`: the number of MLP units masked in each layer (a random subset; default half)."""
    net, x, H, hd, grp, layers = build(name)
    add_gates(net, 'mlp'); add_gates(net, 'heads')
    gen = torch.Generator().manual_seed(seed)
    hg, mg = head_gates(net), mlp_gates(net)
    assert len(hg) == len(mg) == len(layers) == len(heads_masked)
    with torch.no_grad():
        for g in gates(net): g.mu.copy_(torch.empty(g.n_units).uniform_(-1.5, .5, generator=gen))
        for g, hs in zip(hg, heads_masked): g.mask.fill_(1); g.mask[list(hs)] = 0
        for g in mg:
            g.mask.fill_(1); g.mask[torch.randperm(g.n_units, generator=gen)[:g.n_units//2 if mlp_masked is None else mlp_masked]] = 0
    return net.eval(), x, H, hd, grp


def o_proj(layer):
    "The output projection of the attention of transformer layer `layer` (a plain layer once reduced)."
    for n in ('attention.output.dense', 'attn.c_proj', 'attention.o_proj', 'self_attn.o_proj'):
        try: return layer.get_submodule(n)
        except AttributeError: pass
    raise AttributeError(type(layer).__name__)


def attention(layer):
    for n in ('attention.self', 'attn', 'attention', 'self_attn'):
        try:
            a = layer.get_submodule(n)
            if hasattr(a, 'head_dim') or hasattr(a, 'attention_head_size'): return a
        except AttributeError: pass
    raise AttributeError(type(layer).__name__)


def in_width(m): return m.weight.shape[0] if type(m).__name__ == 'Conv1D' else m.in_features


def layers_of(red):
    for path in ('bert.encoder.layer', 'transformer.h', 'vit.layers', 'model.layers'):
        try: return red.get_submodule(path)
        except AttributeError: pass


def check_counts(net, red, x):
    "Logits within 1e-5 (relative), nothing of bmrs left, parameters removed = the plan's count = the reduced count."
    assert check_reduced(net, red, x, atol=1e-5) <= 1e-5
    assert not gates(red) and not any(isinstance(m, (Gated, HeadGated, R.Scale)) for m in red.modules())
    assert type(red) is type(net)
    assert plan_removed_params(net, red.bmrs_plan) == n_params(net, trainable=False) - n_params(red, trainable=False)
    real = 100*(n_params(net, trainable=False) - n_params(red, trainable=False))/n_params(net, trainable=False)
    assert abs(reduced_param_compression(net, x) - real) < 1e-9
    assert reduced_param_compression(net, plan=red.bmrs_plan) == reduced_param_compression(net, x)   # one plan, one count


@pytest.mark.parametrize('name', ['bert', 'gpt2', 'vit'])
def test_heads_and_mlp(name, monkeypatch):
    "Heads 1 and 3 masked in layer 0, every head in layer 1: 2 + 3 heads go (attention keeps one), every masked MLP unit goes."
    net, x, H, hd, _ = gated(name, [(1, 3), (0, 1, 2, 3)])
    masked_mlp = [int((g.mask == 0).sum()) for g in mlp_gates(net)]
    def no_graph(*a, **k): raise AssertionError("the dependency graph is not needed here")
    monkeypatch.setattr(R, '_graph', no_graph)
    red = reduce(net, x)
    check_counts(net, red, x)
    plan = red.bmrs_plan
    assert plan['method'] == ('vit' if name == 'vit' else 'transformers')
    lay = layers_of(red)
    assert [in_width(o_proj(l))//hd for l in lay] == [2, 1]                      # heads left: 4 - 2, 4 - 3
    for l, h in zip(lay, (2, 1)):
        a = attention(l)
        assert getattr(a, 'num_attention_heads', getattr(a, 'num_heads', None)) == h
        if name == 'gpt2': assert (a.split_size, a.c_attn.nf) == (h*hd, 3*h*hd)     # q, k and v parts of the fused c_attn
        if name == 'bert': assert a.all_head_size == h*hd
    widths = [g.n_units - k for g, k in zip(mlp_gates(net), masked_mlp)]
    up = {'bert': 'intermediate.dense', 'gpt2': 'mlp.c_fc', 'vit': 'mlp.fc1'}[name]
    assert [(lambda m: m.nf if type(m).__name__ == 'Conv1D' else m.out_features)(l.get_submodule(up)) for l in lay] == widths
    gs = plan['gates']
    hgs = [n for n in gs if gs[n]['n_units'] == H]
    assert [len(gs[n]['kept']) for n in hgs] == [2, 1]
    assert list(plan['reasons']) == [hgs[1]] and plan['reasons'][hgs[1]] == '1 of 4 masked heads stay: attention keeps at least one head'


def test_llama_gqa(monkeypatch, tmp_path):
    """6 query heads, 2 key/value heads (3 query heads each). Layer 0: heads 0-2 masked, key/value head 0 goes with them.
    Layer 1: heads 0 and 3, one per group: both groups shrink to 2. Layer 2: heads 0, 1 and 3: group 0 has 2 masked,
    group 1 only 1, so each loses 1 (heads 0 and 3) and head 1 stays, with the reason. 7 of 8 masked heads go."""
    net, x, H, hd, grp = gated('llama', [(0, 1, 2), (0, 3), (0, 1, 3)])
    def no_graph(*a, **k): raise AssertionError("the dependency graph is not needed here")
    monkeypatch.setattr(R, '_graph', no_graph)    # it stalled reduce on Llama: the rules do without it
    red = reduce(net, x)
    check_counts(net, red, x)
    lay = red.model.layers
    assert [(l.self_attn.q_proj.out_features//hd, l.self_attn.k_proj.out_features//hd, l.self_attn.v_proj.out_features//hd,
             l.self_attn.o_proj.in_features//hd, l.self_attn.num_key_value_groups) for l in lay] == [(3, 1, 1, 3, 3), (4, 2, 2, 4, 2), (4, 2, 2, 4, 2)]
    gs = red.bmrs_plan['gates']
    kept = [gs[n]['kept'] for n in gs if n.endswith('o_proj.0')]
    assert kept == [[3, 4, 5], [1, 2, 4, 5], [1, 2, 4, 5]]
    sum_removed = sum(e['n_units'] - len(e['kept']) for n, e in gs.items() if n.endswith('o_proj.0'))
    assert sum_removed == 7
    (n, why), = red.bmrs_plan['reasons'].items()
    assert n == 'model.layers.2.self_attn.o_proj.0' and why.startswith('1 of 3 masked heads stay: grouped-query attention'), why
    for n, e in gs.items():   # every masked MLP unit goes
        if n.endswith('up_proj.1'): assert e['n_units'] - len(e['kept']) == e['n_masked'] == 48
    assert red.bmrs_plan['config']['expressible'] is False and 'head counts differ per layer' in red.bmrs_plan['config']['note']
    save_reduced(red, tmp_path/'m')   # per-layer head counts: bmrs's own save / load (the plan sets num_key_value_groups)
    back = load_reduced(tmp_path/'m', base=copy.deepcopy(net))
    assert [l.self_attn.num_key_value_groups for l in back.model.layers] == [3, 2, 2]
    with torch.no_grad(): torch.testing.assert_close(back(x).logits, net(x).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', ['llama', 'vit'])
def test_uniform_save_pretrained(name, tmp_path):
    "The same heads and the same number of MLP units gone in every layer: the config says so; save_pretrained / from_pretrained round-trip."
    heads = [(0, 1, 2)]*3 if name == 'llama' else [(1, 3)]*2
    net, x, H, hd, grp = gated(name, heads, mlp_masked=16)
    red = reduce(net, x)
    check_counts(net, red, x)
    cfg = red.bmrs_plan['config']
    assert cfg['expressible'] is True, cfg
    want = dict(num_attention_heads=3, num_key_value_heads=1, head_dim=8, intermediate_size=80) if name == 'llama' else \
           dict(num_attention_heads=2, head_dim=8, intermediate_size=48)
    assert cfg['changes'] == want and all(getattr(red.config, k) == v for k, v in want.items())
    red.save_pretrained(tmp_path)
    back = type(net).from_pretrained(tmp_path).eval()
    with torch.no_grad(): torch.testing.assert_close(back(x).logits, net(x).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', ['bert', 'gpt2'])
def test_heads_save_reduced(name, tmp_path):
    "BERT and GPT-2 derive the head size from hidden_size / heads: the note says so, and bmrs's own save / load round-trips."
    net, x, H, hd, _ = gated(name, [(1, 3), (1, 3)])
    red = reduce(net, x)
    cfg = red.bmrs_plan['config']
    assert cfg['expressible'] is False and 'derives the head size' in cfg['note'] and 'save_reduced' in cfg['note']
    save_reduced(red, tmp_path/'m')
    back = load_reduced(tmp_path/'m', base=copy.deepcopy(net))
    with torch.no_grad(): torch.testing.assert_close(back(x).logits, net(x).logits, rtol=1e-5, atol=1e-5)
    assert [in_width(o_proj(l))//hd for l in layers_of(back)] == [2, 2]



class Branchy(nn.Module):
    "Data-dependent control flow (torch.fx cannot trace it) and a head gate before a Linear that is no attention's output."
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), HeadGated(NoiseGate(2, axis=-2), nn.Linear(8, 3), 4)
    def forward(self, x):
        h = self.a(x)
        return self.b(h if h.sum() > -1e9 else -h)


def test_unknown_head_gate_graph():
    "A head gate the rules do not know is folded with a reason; the dependency graph, whose group search on it never ended on Llama, is not asked."
    torch.manual_seed(0)
    net = Branchy().eval()
    with torch.no_grad(): net.b.gate.mask[1] = 0
    x = torch.randn(5, 4)
    red = reduce(net, x)
    assert check_reduced(net, red, x) <= 1e-5
    assert red.bmrs_plan['method'] == 'graph' and red.b.layer.in_features == 8
    assert red.bmrs_plan['reasons'] == {'b.0': '1 of 1 masked heads stay: a head gate on an attention layout the transformers rules '
                                                'do not know is folded, not followed through the dependency graph'}

"""`bmrs.reduce` through `torch.split` / `torch.chunk`, with bmrs's own mapping of indices through the pieces: a gated
linear unit (a unit and its partner in the other half go together), sizes fixed in the code (kept, with the reason),
a split along another axis than the units (they pass through), and networks `torch.fx` cannot trace (the sizes are
taken to follow the tensor and the candidate is built and checked). Each test compares the reduced logits with the
masked network's and counts the removed units by hand."""
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from bmrs.layers import NoiseGate
from bmrs.models import Gated
from test_reduce_zoo import mask_half, check, removed_share, gated_bn, X

torch.set_num_threads(1)


class GLU(nn.Module):
    "A gated linear unit: a, b = up(x).chunk(2, -1); down(a * sigmoid(b)), with a gate on up's 8 outputs."
    def __init__(self):
        super().__init__()
        self.up, self.down = Gated(nn.Linear(6, 8), NoiseGate(8, axis=-1)), nn.Linear(4, 5)
    def forward(self, x):
        a, b = self.up(x).chunk(2, -1)
        return self.down(a*torch.sigmoid(b))


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('shape', [(3, 6), (2, 3, 6)])
def test_glu_pairs(seed, shape):
    """Unit i (in a) and its partner i + 4 (in b) are coupled: a_i * sigmoid(b_i) is zero when a_i is masked, but
    sigmoid(0) = 1/2, so b_i alone cannot go, and a masked a_i takes its partner with it only if that one is masked too
    (bmrs removes masked units only). Removed: the pairs whose two halves are masked, which keeps the chunk's pieces equal."""
    net = mask_half(GLU(), seed=seed)
    m = net.up[1].mask
    pairs = [i for i in range(4) if m[i] == 0 and m[i + 4] == 0]
    red = check(net, torch.randn(*shape), min_share=None)
    e = red.bmrs_plan['gates']['up.1']
    assert e['kept'] == [i for i in range(8) if i % 4 not in pairs]
    assert (red.up.out_features, red.down.in_features) == (8 - 2*len(pairs), 4 - len(pairs))
    assert removed_share(net, red) == 2*len(pairs)/4
    if len(pairs) < 2: assert 'coupled with units of the same gate that are not masked' in red.bmrs_plan['reasons']['up.1']


def test_glu_hand_count():
    "Units 1, 3, 5, 7 masked by hand: pairs (1, 5) and (3, 7), all four go; with 5 unmasked, only (3, 7)."
    net = mask_half(GLU())
    with torch.no_grad(): net.up[1].mask.copy_(torch.tensor([1., 0., 1., 0., 1., 0., 1., 0.]))
    red = check(net, torch.randn(3, 6), min_share=1.)
    assert red.bmrs_plan['gates']['up.1']['kept'] == [0, 2, 4, 6] and red.bmrs_plan['reasons'] == {}
    with torch.no_grad(): net.up[1].mask[5] = 1.
    red = check(net, torch.randn(3, 6), min_share=None)
    assert red.bmrs_plan['gates']['up.1']['kept'] == [0, 1, 2, 4, 5, 6] and (red.up.out_features, red.down.in_features) == (6, 3)
    assert red.bmrs_plan['reasons']['up.1'].startswith('1 of 3 masked units stay: they are coupled with units of the same gate')


class FixedSplit(nn.Module):
    "torch.split(y, sizes, 1) with the sizes written in the code, each piece read by its own convolution."
    def __init__(self, sizes=(3, 5)):
        super().__init__()
        self.sizes = list(sizes)
        self.conv, self.bn = nn.Conv2d(3, 8, 1), gated_bn(8)
        self.c1, self.c2, self.head = nn.Conv2d(sizes[0], 4, 1), nn.Conv2d(sizes[1], 4, 1), nn.Linear(4, 5)
    def forward(self, x):
        a, b = torch.split(F.relu(self.bn(self.conv(x))), [3, 5] if self.sizes == [3, 5] else [4, 4], 1)
        return self.head((self.c1(a) + self.c2(b)).mean((2, 3)))


@pytest.mark.parametrize('sizes', [(3, 5), (4, 4)])
def test_fixed_split_reason(sizes):
    """Sizes fixed as constants in the code: `reduce` returns a copy of the network's own module, whose code it does not
    rewrite, so the reduced network would split a smaller tensor with the same constants. Every unit stays, with the reason."""
    torch.manual_seed(0)
    net = mask_half(FixedSplit(sizes))
    red = check(net, X, min_share=None)
    e = red.bmrs_plan['gates']['bn.1']
    assert (e['n_masked'], len(e['kept'])) == (4, 8) and (red.c1.in_channels, red.c2.in_channels) == sizes
    r = red.bmrs_plan['reasons']['bn.1']
    assert f"4 of 4 masked units stay: a split's sizes {list(sizes)} are fixed in the network's code" in r, r


class HeightSplit(nn.Module):
    "A split along the height (dim 2), not along the gated channels: each half read by its own convolution."
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 6, 3, padding=1), gated_bn(6)
        self.c1, self.c2, self.head = nn.Conv2d(6, 4, 1), nn.Conv2d(6, 4, 1), nn.Linear(4, 5)
    def forward(self, x):
        a, b = F.relu(self.bn(self.conv(x))).split(4, dim=2)
        return self.head(self.c1(a).mean((2, 3)) + self.c2(b).mean((2, 3)))


def test_split_other_axis():
    "The channels pass a split along the height unchanged: all 3 masked units go, from conv, bn, c1 and c2."
    torch.manual_seed(0)
    net = mask_half(HeightSplit())
    red = check(net, X, min_share=1.)
    k = int(net.bn[1].mask.sum())
    assert k == 3 and (red.conv.out_channels, red.bn.num_features, red.c1.in_channels, red.c2.in_channels) == (k, k, k, k)


class Untraceable(nn.Module):
    "torch.fx cannot trace it (control flow on a value); a chunk(2) or a split with constant sizes of gated channels."
    def __init__(self, fixed=False):
        super().__init__()
        self.fixed = fixed
        self.conv, self.bn = nn.Conv2d(3, 8, 1), gated_bn(8)
        self.c1, self.c2, self.head = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1), nn.Linear(4, 5)
    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        if float(x.sum()) > -1e9: y = y + 0.
        a, b = torch.split(y, [4, 4], 1) if self.fixed else torch.chunk(y, 2, 1)
        return self.head((self.c1(a) + self.c2(b)).mean((2, 3)))


def test_untraceable_chunk():
    """Without a trace, the sizes are taken to follow the tensor; seed 1 masks two units in each half (0, 1 | 4, 7 of 8),
    the candidate builds exactly, all four go."""
    net = mask_half(Untraceable(), seed=1)
    assert torch.nonzero(net.bn[1].mask == 0).flatten().tolist() == [0, 1, 4, 7]
    red = check(net, X, min_share=1.)
    assert red.bmrs_plan['gates']['bn.1']['kept'] == [2, 3, 5, 6] and (red.c1.in_channels, red.c2.in_channels) == (2, 2)


def test_untraceable_fixed_split():
    """Without a trace, a split [4, 4] fixed in the code looks like a chunk; the candidate does not build (the reduced
    network splits 4 channels into [4, 4]), so the units stay, with the reason."""
    net = mask_half(Untraceable(fixed=True), seed=1)
    red = check(net, X, min_share=None)
    assert len(red.bmrs_plan['gates']['bn.1']['kept']) == 8
    assert 'through a split / chunk changes the outputs or the shapes' in red.bmrs_plan['reasons']['bn.1'], red.bmrs_plan['reasons']


class GatedPieces(nn.Module):
    "A conv's 8 channels chunked in two, a gate on each piece (after the chunk), each piece read by its own convolution."
    def __init__(self):
        super().__init__()
        self.conv, self.ga, self.gb = nn.Conv2d(3, 8, 1), NoiseGate(4), NoiseGate(4)
        self.c1, self.c2, self.head = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1), nn.Linear(4, 5)
    def forward(self, x):
        a, b = torch.chunk(self.conv(x), 2, 1)
        return self.head((self.c1(F.relu(self.ga(a))) + self.c2(F.relu(self.gb(b)))).mean((2, 3)))


def test_gates_after_chunk():
    """A unit removed in a reader of piece k maps back to the producer's channel (its index plus the piece's offset).
    Masks 1, 3 on piece a and 0 on piece b: the chunk of the reduced conv's output must give equal pieces, so one
    piece-a unit stays (the last, 3): the conv loses channels 1 and 4."""
    net = mask_half(GatedPieces())
    with torch.no_grad(): net.ga.mask.copy_(torch.tensor([1., 0., 1., 0.])); net.gb.mask.copy_(torch.tensor([0., 1., 1., 1.]))
    red = check(net, X, min_share=None)
    p = red.bmrs_plan
    assert (p['gates']['ga']['kept'], p['gates']['gb']['kept']) == ([0, 2, 3], [1, 2, 3])
    assert p['modules']['conv']['out'] == [0, 2, 3, 5, 6, 7] and (red.c1.in_channels, red.c2.in_channels) == (3, 3)
    assert p['reasons'] == {'ga': "1 of 2 masked units stay: 1 kept so that the chunk's pieces stay equal"}
    with torch.no_grad(): net.gb.mask.copy_(torch.tensor([1., 0., 1., 0.]))   # the same units on both pieces: all four go
    red = check(net, X, min_share=1.)
    assert red.bmrs_plan['modules']['conv']['out'] == [0, 2, 4, 6]


class Unbind(nn.Module):
    "unbind along the gated features (4 pieces of one unit each, taken by name), then a product and a stack."
    def __init__(self):
        super().__init__()
        self.up, self.head = Gated(nn.Linear(6, 4), NoiseGate(4, axis=-1)), nn.Linear(3, 5)
    def forward(self, x):
        a, b, c, d = self.up(x).unbind(-1)
        return self.head(torch.stack([a*b, c, d], -1))


def test_unbind_reason():
    """An unbind along the units gives one piece per unit, taken by the code: none can go. Torch-Pruning maps indices
    through it and the stack beyond the reader's width (reduce raised IndexError on it); now the units stay, with the reason."""
    net = mask_half(Unbind())
    red = check(net, torch.randn(3, 6), min_share=None)
    e, r = red.bmrs_plan['gates']['up.1'], red.bmrs_plan['reasons']['up.1']
    assert (e['n_masked'], len(e['kept'])) == (2, 4) and r.startswith('2 of 2 masked units stay'), r
    assert 'Torch-Pruning maps them beyond the 3 channels of head' in r, r

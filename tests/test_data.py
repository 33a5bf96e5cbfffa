"""Integration tests of `bmrs.data`: the `bmrs-data` CLI (npm / Debian registries) and the real MNIST and Fashion-MNIST.

The data are fetched once into `$BMRS_DATA_ROOT` (default `<repo>/data`) and reused by later runs."""
import re, shutil, subprocess, sys
from pathlib import Path

import pytest
from conftest import ROOT
import torch
import torch.nn.functional as F

from bmrs.data import EXPECTED, load, load_raw, raw_stats



def bmrs_data(*args):
    "Run the `bmrs-data` console script of this interpreter's environment"
    cli = shutil.which('bmrs-data', path=str(Path(sys.executable).parent)) or shutil.which('bmrs-data')
    if cli is None: pytest.fail("no `bmrs-data` console script: run `pip install -e .` in the repository")
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope='module')
def root():
    r = bmrs_data('fetch', 'mnist', 'fashion_mnist', '--root', str(ROOT))
    assert r.returncode == 0, r.stdout + r.stderr
    return ROOT


def test_fetch_is_idempotent(root):
    r = bmrs_data('fetch', 'mnist', 'fashion_mnist', '--root', str(root))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('already present and verified') == 2


@pytest.mark.parametrize('name', ['mnist', 'fashion_mnist'])
def test_raw_statistics(root, name):
    "The decoded files match DATA.md: shapes, label counts, pixel mean / std, and the pinned SHA-256"
    stats = raw_stats(load_raw(name, root))
    for k, v in EXPECTED[name].items(): assert stats[k] == v, k
    assert stats['train_shape'] == (60000, 1, 28, 28) and stats['test_shape'] == (10000, 1, 28, 28)


def test_mnist_facts(root):
    raw = load_raw('mnist', root)
    assert raw['train'].y[:5].tolist() == [5, 0, 4, 1, 9]
    x = raw['train'].x.double()
    assert round(x.mean().item(), 3) == 33.318 and round(x.std(unbiased=False).item(), 3) == 78.567
    assert torch.bincount(raw['train'].y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert round(raw['test'].x.double().mean().item(), 3) == 33.791


def test_fashion_mnist_facts(root):
    raw = load_raw('fashion_mnist', root)
    assert raw['train'].y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert raw['test'].y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert torch.bincount(raw['train'].y).tolist() == [6000] * 10
    assert torch.bincount(raw['test'].y).tolist() == [1000] * 10
    assert abs(raw['train'].x.double().mean().item() / 255 - 0.2860) < 1e-4


@pytest.mark.parametrize('name', ['mnist', 'fashion_mnist'])
def test_load_preprocessing(root, name):
    "32×32 bilinear resize and (x − 127)/255; 48k / 12k seeded split of the official train set; official test set"
    ds, raw = load(name, root), load_raw(name, root)
    assert (ds.n_classes, ds.in_channels, ds.image_size) == (10, 1, 32)
    assert ds.train.x.shape == (48000, 1, 32, 32) and ds.val.x.shape == (12000, 1, 32, 32)
    assert ds.test.x.shape == (10000, 1, 32, 32) and ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    ref = (F.interpolate(raw['test'].x[:500].float(), size=(32, 32), mode='bilinear', align_corners=False) - 127) / 255
    torch.testing.assert_close(ds.test.x[:500], ref)
    assert ds.test.x.min().item() == pytest.approx(-127 / 255) and ds.test.x.max().item() == pytest.approx(128 / 255)
    assert torch.equal(ds.test.y, raw['test'].y)
    assert torch.equal(torch.bincount(torch.cat([ds.train.y, ds.val.y])), torch.bincount(raw['train'].y))
    again, other = load(name, root), load(name, root, split_seed=1)
    assert torch.equal(again.val.y, ds.val.y) and torch.equal(again.val.x, ds.val.x)
    assert not torch.equal(other.val.x, ds.val.x)


def test_limit_subset(root):
    ds = load('mnist', root, limit=300)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (240, 60, 300)
    assert torch.bincount(torch.cat([ds.train.y, ds.val.y]), minlength=10).min() >= 25


def test_cli_unknown_dataset(tmp_path):
    r = bmrs_data('fetch', 'mnits', '--root', str(tmp_path))
    assert r.returncode == 2   # bad input (bmrs.utils: 2 for bad usage or input)
    assert "unknown dataset 'mnits'" in r.stderr and 'mnist' in r.stderr
    assert 'Traceback' not in r.stderr


@pytest.mark.parametrize('name', ['cifar10', 'tinyimagenet'])
def test_cli_not_fetchable(tmp_path, name):
    r = bmrs_data('fetch', name, '--root', str(tmp_path))
    assert r.returncode == 2
    assert f'{name} cannot be fetched' in r.stderr and 'download=True' in r.stderr
    assert 'Traceback' not in r.stderr and not any(tmp_path.iterdir())


def test_cli_missing_data_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f'bmrs-data fetch mnist --root {tmp_path}')): load('mnist', tmp_path)


def test_cli_usage(tmp_path):
    "bmrs-data's usage errors and its help: argparse, exit 2, nothing written"
    for args in ([], ['get', 'mnist'], ['fetch']):
        r = bmrs_data(*args, '--root', str(tmp_path)) if args else bmrs_data()
        assert r.returncode == 2 and r.stderr.startswith('usage: bmrs-data') and 'Traceback' not in r.stderr, (args, r.stderr)
    r = bmrs_data('fetch', '--help')
    assert r.returncode == 0 and 'datasets to fetch: mnist, fashion_mnist' in r.stdout, r.stdout
    assert not any(tmp_path.iterdir())

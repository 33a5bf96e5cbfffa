"""Fault injection for `bmrs-train --save_reduced`: SIGKILL at seeded random moments (and right after the checkpoint
lands), then rerun with --skip_exists; tampered records and checkpoints. Invariants checked after every kill:
every file present parses or loads (temporary files only as hidden `.*.tmp`), a record exists only for a finished run
and every file it names verifies against its SHA-256, a rerun skips a finished run and runs an unfinished one."""
import csv, io, json, random, shutil, signal, subprocess, time

import pytest
from conftest import ROOT, exe
import torch

TINY = ['--network', 'mlp', '--dataset', 'mnist', '--n_layers', '1', '--hidden_dim', '16', '--n_epochs', '2',
        '--fine_tune_epochs', '1', '--batch_size', '32', '--limit', '300', '--learning_rate', '0.01', '--no_progress',
        '--seed', '5', '--save_reduced', '--run_name', 'tiny']


def args(tmp): return [exe('bmrs-train'), '--metrics_dir', str(tmp/'metrics'), '--output_dir', str(tmp/'output'), '--data_root', str(ROOT), *TINY]


def record_path(tmp): return tmp/'metrics'/'tiny-seed5.json'


def check_no_partial_file(tmp):
    "Every visible file parses or loads; anything else is a hidden temporary file"
    from safetensors.torch import load_file
    for f in tmp.rglob('*'):
        if not f.is_file(): continue
        if f.name.startswith('.'):
            assert f.name.endswith('.tmp') or f.name.startswith('.bmrs-write-check.'), f; continue
        if f.suffix == '.json': json.loads(f.read_text())
        elif f.suffix == '.csv': rows = list(csv.DictReader(io.StringIO(f.read_text()))); assert rows and 'val_top1' in rows[0], f
        elif f.suffix == '.pt': assert 'state_dict' in torch.load(f, map_location='cpu', weights_only=True), f
        elif f.suffix == '.safetensors': load_file(f)
        else: pytest.fail(f"unexpected file {f}")


def check_record(tmp) -> bool:
    "A record, if any, is a finished run's: every file it names verifies. Whether there is one."
    from bmrs.train import read_record, verify_run_files, load_run
    p = record_path(tmp)
    if not p.exists(): return False
    rec, base = read_record(p)
    assert set(rec['files']) == {'epochs_csv', 'checkpoint', 'reduced'} and set(rec['sha256']) == set(rec['files'])
    verify_run_files(rec, base)
    load_run(p)
    return True


def rerun_skip(tmp, finished):
    "--skip_exists skips a finished run (touching nothing) and runs an unfinished one to the end"
    before = {f: f.stat().st_mtime_ns for f in tmp.rglob('*') if f.is_file()}
    r = subprocess.run(args(tmp) + ['--skip_exists'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    if finished:
        assert 'skipping:' in r.stderr, r.stderr
        assert {f: f.stat().st_mtime_ns for f in tmp.rglob('*') if f.is_file()} == before
    else: assert 'running:' in r.stderr and 'skipping' not in r.stderr, r.stderr
    assert check_record(tmp)
    check_no_partial_file(tmp)


def kill_at(tmp, delay=None, when=None):
    "Start a run; SIGKILL it after `delay` seconds or as soon as `when()` holds"
    p = subprocess.Popen(args(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while p.poll() is None:
        if (delay is not None and time.monotonic() - t0 >= delay) or (when is not None and when()): p.kill(); break
        time.sleep(.002)
    p.wait()
    return p.returncode


def test_sigkill_then_rerun(tmp_path):
    t0 = time.monotonic()
    r = subprocess.run(args(tmp_path), capture_output=True, text=True, timeout=300)
    T = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert check_record(tmp_path)
    rng = random.Random(15)
    moments = [rng.uniform(.3, 1.05)*T for _ in range(3)]
    ck = tmp_path/'output'/'tiny-seed5'/'model.pt'
    for i, m in enumerate(moments + [None]):
        if m is None:                            # the riskiest moment: the checkpoint has just been replaced
            mtime = ck.stat().st_mtime_ns
            rc = kill_at(tmp_path, when=lambda: ck.exists() and ck.stat().st_mtime_ns != mtime)
        else: rc = kill_at(tmp_path, delay=m)
        check_no_partial_file(tmp_path)
        finished = check_record(tmp_path)
        if rc == -signal.SIGKILL and m is None: assert not finished      # killed before its record: none left
        rerun_skip(tmp_path, finished)


def finished_run(tmp):
    r = subprocess.run(args(tmp), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return record_path(tmp)


@pytest.fixture(scope='module')
def done(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp('done'))


def copy_run(done, tmp):
    shutil.copytree(done.parents[1], tmp, dirs_exist_ok=True)
    return record_path(tmp)


def test_tampered_record_and_checkpoint(done, tmp_path):
    from bmrs.files import FileError
    from bmrs.train import load_run
    good, ck_good = done.read_text(), (done.parents[1]/'output'/'tiny-seed5'/'model.pt').read_bytes()
    cases = [
        ('truncated record', lambda rec_p, ck: rec_p.write_text(good[:len(good)//2]), 'is not valid JSON'),
        ('record without files', lambda rec_p, ck: rec_p.write_text(json.dumps({k: v for k, v in json.loads(good).items() if k != 'files'})),
         "has no 'files' entry"),
        ('flipped checkpoint byte', lambda rec_p, ck: ck.write_bytes(ck_good[:999] + bytes([ck_good[999] ^ 1]) + ck_good[1000:]),
         'has changed since it was written'),
        ('empty checkpoint', lambda rec_p, ck: ck.write_bytes(b''), 'has changed since it was written'),
    ]
    for i, (what, tamper, message) in enumerate(cases):
        tmp = tmp_path/str(i); rec_p = copy_run(done, tmp); ck = tmp/'output'/'tiny-seed5'/'model.pt'
        tamper(rec_p, ck)
        with pytest.raises(FileError) as e: load_run(rec_p)
        msg = str(e.value)
        assert message in msg and len(msg.splitlines()) == 1, (what, msg)
        assert str(rec_p) in msg or str(ck) in msg, (what, msg)
        # the CLI with --skip_exists: such a run is not finished; it runs again and says why, in one line (two cases: time)
        if i % 2: continue
        r = subprocess.run(args(tmp) + ['--skip_exists'], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (what, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('running:') and message in lines[0], (what, r.stderr)
        assert check_record(tmp)
        check_no_partial_file(tmp)


def test_tampered_compression_file(done, tmp_path):
    "a truncated record given as --compression_percentage_file: one line naming it, nothing written"
    rec_p = copy_run(done, tmp_path/'src'); rec_p.write_text(rec_p.read_text()[:100])
    r = subprocess.run([exe('bmrs-train'), '--metrics_dir', str(tmp_path/'m'), '--output_dir', str(tmp_path/'o'), '--data_root', str(ROOT),
                        *TINY, '--pruning_class', 'l2', '--compression_percentage_file', str(rec_p)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and str(rec_p) in r.stderr and 'not valid JSON' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path/'m').exists() and not (tmp_path/'o').exists()

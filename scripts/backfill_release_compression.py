"""Add `metrics.param_compression_release` (the released code's parameter count, `bmrs.layers.release_param_compression`)
to run JSONs written before `bmrs.train` recorded it, from each run's checkpoint.

    python scripts/backfill_release_compression.py runs/table1_cpu/*/*-seed*.json

Runs that already have the field, or whose checkpoint is missing, are reported and left alone (exit 1 if any is missing)."""
import json, sys
from pathlib import Path
import torch
from bmrs.data import dataset_info
from bmrs.models import build_model
from bmrs.layers import release_param_compression
from bmrs.train import write_atomic

def main(paths):
    missing = 0
    for path in map(Path, paths):
        rec = json.loads(path.read_text()); m, c = rec['metrics'], rec['config']
        if 'param_compression_release' in m: continue
        if c.get('criterion') is None: m['param_compression_release'] = 0.
        else:
            ck = Path(rec['files']['checkpoint'])
            if not ck.is_file(): print(f"{path}: checkpoint {ck} not found", file=sys.stderr); missing += 1; continue
            info = dataset_info(c['dataset'])
            model = build_model(c['network'], in_channels=info.in_channels, image_size=info.image_size,
                                n_classes=info.n_classes, gate=c['criterion'],
                                n_layers=c['n_layers'], hidden_dim=c['hidden_dim'])
            model.load_state_dict(torch.load(ck, map_location='cpu', weights_only=True)['state_dict'])
            m['param_compression_release'] = release_param_compression(model)
        write_atomic(path, json.dumps(rec, indent=1, default=str))
        print(f"{path.name}: {m['param_compression_release']:.2f} % (ours {m['param_compression']:.2f} %)")
    sys.exit(1 if missing else 0)

if __name__ == '__main__': main(sys.argv[1:])

"""Add `metrics.param_compression_release` (the released code's parameter count, `bmrs.layers.release_param_compression`)
to run JSONs written before `bmrs.train` recorded it, from each run's checkpoint.

    python scripts/backfill_release_compression.py runs/table1_cpu/*/*-seed*.json

Runs that already have the field, or whose checkpoint is missing, are reported and left alone (exit 1 if any is missing)."""
import json, sys
from pathlib import Path
from bmrs.layers import release_param_compression
from bmrs.files import FileError, write_atomic
from bmrs.train import load_run

def main(paths):
    missing = 0
    for path in map(Path, paths):
        rec = json.loads(path.read_text()); m, c = rec['metrics'], rec['config']
        if 'param_compression_release' in m: continue
        if c.get('criterion') is None: m['param_compression_release'] = 0.
        else:
            try: model, _ = load_run(path)
            except (FileNotFoundError, FileError) as e: print(f"{path}: {e}", file=sys.stderr); missing += 1; continue
            m['param_compression_release'] = release_param_compression(model)
        write_atomic(path, json.dumps(rec, indent=1, default=str))
        print(f"{path.name}: {m['param_compression_release']:.2f} % (ours {m['param_compression']:.2f} %)")
    sys.exit(1 if missing else 0)

if __name__ == '__main__': main(sys.argv[1:])

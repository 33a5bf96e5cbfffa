"""What the small benchmark scripts (`eval_batch.py`, `pool.py`) put around their rows: the command, the machine and the
date; written atomically (`bmrs.files.write_atomic`: a killed run leaves the old file or none, never half of one)."""
import json, platform, sys, time
from pathlib import Path
import torch
from bmrs.files import write_atomic

def write_record(script:str, # the script's path from the repository root, e.g. 'benchmarks/pool.py'
                 argv, # its arguments (None: sys.argv[1:])
                 threads:int, # torch threads it ran with
                 out, # where to write the JSON (None: nowhere)
                 rec:dict, # the record: kind, settings, rows
                ) -> dict:
    "`rec` with `command`, `machine` and `date` added, written to `out` if given; returns it."
    rec = dict(rec, command=f'python {script} ' + ' '.join(argv if argv is not None else sys.argv[1:]),
               machine=dict(platform=platform.platform(), torch=torch.__version__, threads=threads),
               date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, json.dumps(rec, indent=1) + '\n')
    return rec

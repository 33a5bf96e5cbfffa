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
                 markdown=None, # a function of the finished record giving its Markdown page, written beside `out` (.md)
                ) -> dict:
    "`rec` with `command`, `machine` and `date` added, written to `out` if given (with its Markdown page if `markdown`); returns it."
    rec = dict(rec, command=f'python {script} ' + ' '.join(argv if argv is not None else sys.argv[1:]),
               machine=dict(platform=platform.platform(), torch=torch.__version__, threads=threads),
               date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, json.dumps(rec, indent=1) + '\n')
        if markdown is not None: write_atomic(Path(out).with_suffix('.md'), markdown(rec))
    return rec

def timing_options(p, batch_size:list, reps:int, warmup:int):
    "Add the options of a timing script to argparse parser `p`: --batch_size, --reps, --warmup, --threads, --note, --out."
    p.add_argument('--batch_size', type=int, nargs='+', default=batch_size)
    p.add_argument('--reps', type=int, default=reps)
    p.add_argument('--warmup', type=int, default=warmup)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--note', default=None, help='free text stored with the results (e.g. what else ran on the machine)')
    p.add_argument('--out', default=None, help='JSON to write (and the Markdown table beside it, .md)')

def check_timing(a, script:str):
    "Exit with a one-line message unless the `timing_options` of `a` are usable (`script`: the file name said first)."
    for k in ('reps', 'threads'):
        if getattr(a, k) < 1: raise SystemExit(f"{script}: --{k} must be at least 1, got {getattr(a, k)}")
    if a.warmup < 0 or min(a.batch_size) < 1: raise SystemExit(f"{script}: --warmup must be at least 0 and --batch_size at least 1")

def footer(rec:dict) -> list:
    "The last lines of a timing page: the command, date, machine and repetitions of finished record `rec`, then its note if any."
    m = rec['machine']
    out = ["", f"`{rec['command']}`, {rec['date']}, {m['platform']}, torch {m['torch']}, {m['threads']} thread(s), "
           f"{rec['reps']} repetitions after {rec['warmup']} warm-up calls."]
    return out + (["", rec['note']] if rec.get('note') else [])

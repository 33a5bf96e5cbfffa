"""results/ddp_cpu/README.md's table is what results/ddp_cpu/compare.py prints from the committed records."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_ddp_table_is_computed_from_the_records():
    r = subprocess.run([sys.executable, str(ROOT/'results'/'ddp_cpu'/'compare.py')], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    table = r.stdout.strip()
    assert table.count('\n') == 3 and '| 2 |' in table                  # header, rule, 1-process row, 2-process row
    assert table in (ROOT/'results'/'ddp_cpu'/'README.md').read_text()

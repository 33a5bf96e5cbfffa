"""Paste the reproduction notebook's Table 1 comparison (results/table1_cpu/report/comparison.md, written by
nbs/10_reproduction.ipynb) into README.md between the `<!-- table1:begin -->` and `<!-- table1:end -->` markers.

    python scripts/paste_table1.py
"""
import re, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
readme, table = ROOT/'README.md', ROOT/'results'/'table1_cpu'/'report'/'comparison.md'
if not table.is_file(): sys.exit(f"paste_table1: {table} not found: run nbs/10_reproduction.ipynb first")
s = readme.read_text()
if s.count('<!-- table1:begin -->') != 1 or s.count('<!-- table1:end -->') != 1:
    sys.exit("paste_table1: README.md needs exactly one <!-- table1:begin --> and one <!-- table1:end --> marker")
new = re.sub(r'<!-- table1:begin -->.*?<!-- table1:end -->',
             lambda m: '<!-- table1:begin -->\n' + table.read_text().strip() + '\n<!-- table1:end -->', s, flags=re.S)
readme.write_text(new)
print(f"README.md: table replaced ({'changed' if new != s else 'unchanged'})")

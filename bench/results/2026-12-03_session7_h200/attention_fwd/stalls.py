#!/usr/bin/env python3
"""Summarises an ncu source page (--page source --csv --print-source sass, xz or plain):
samples per SASS opcode and stall reason, the top instructions, and the split by region
(producer / consumer guessed from the instruction stream: code after the first
USETMAXREG ... up to the second belongs to one warpgroup role)."""
import csv, io, lzma, sys, collections
path = sys.argv[1]
raw = lzma.open(path, 'rt') if path.endswith('.xz') else open(path)
lines = raw.read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith('"Address"'))
rows = list(csv.DictReader(io.StringIO('\n'.join(lines[start:]))))
stall_cols = [c for c in rows[0] if c.startswith('stall_') and 'Not Issued' not in c]
def num(x):
    try: return float(x)
    except: return 0.0
total = sum(num(r['Warp Stall Sampling (All Samples)']) for r in rows)
print(f'instructions {len(rows)}, samples {total:.0f}')
by_reason = collections.Counter()
for r in rows:
    for c in stall_cols: by_reason[c] += num(r[c])
print('by reason:', ', '.join(f'{k[6:]} {v/total*100:.1f}%' for k, v in by_reason.most_common(10)))
by_op = collections.Counter()
for r in rows:
    op = r['Source'].split()[0] if r['Source'] else '?'
    if op.startswith('@'): op = r['Source'].split()[1]
    by_op[op.split('.')[0]] += num(r['Warp Stall Sampling (All Samples)'])
print('by opcode:', ', '.join(f'{k} {v/total*100:.1f}%' for k, v in by_op.most_common(16)))
print('top instructions:')
top = sorted(range(len(rows)), key=lambda i: -num(rows[i]['Warp Stall Sampling (All Samples)']))[:int(sys.argv[2]) if len(sys.argv) > 2 else 40]
for i in sorted(top):
    r = rows[i]
    s = num(r['Warp Stall Sampling (All Samples)'])
    rs = sorted(((num(r[c]), c[6:]) for c in stall_cols), reverse=True)[:3]
    print(f"{i:5d} {r['Address']:>6} {s/total*100:5.1f}% {r['Source'][:60]:60s} " + ' '.join(f'{n}:{v/total*100:.1f}' for v, n in rs if v > 0))

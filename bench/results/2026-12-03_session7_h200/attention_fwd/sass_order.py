#!/usr/bin/env python3
"""Where the softmax's MUFU.EX2 sit against the wgmma waits of the forward's main
loop, read off an sm_90a cubin without a disassembler (none on the build machine):
instruction opcodes (the low 12 bits of each 16-byte instruction) are named from an ncu
source page (--page source --csv --print-source sass) of a build of the same kernel,
whose rows are the kernel's instructions in order.
  sass_order.py CUBIN DIM SOURCE_CSV[.xz] KNOWN_CUBIN
      (KNOWN_CUBIN: the build the source page was taken of; DIM: 128 or 64)
Prints, for each run of HGMMA in CUBIN's kernel<DIM>, the next two WARPGROUP
instructions (the waits) and how many MUFU lie between them and after the second.
Session 7: the call 1 build put all 66 after the second (the PV wait); with the branch on
the softmax's sums, all 66 lie between the two."""
import csv, io, lzma, re, struct, subprocess, sys

def text(cubin, dim):
    out = subprocess.run(['readelf', '-S', '-W', cubin], capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.search(r'\]\s+(\.text\.\S+)\s+PROGBITS\s+\S+\s+(\S+)\s+(\S+)', line)
        if m and f'kernelILi{dim}E' in m.group(1):
            off, size = int(m.group(2), 16), int(m.group(3), 16)
            data = open(cubin, 'rb').read()[off:off + size]
            return [struct.unpack_from('<Q', data, i)[0] & 0xfff for i in range(0, size, 16)]
    sys.exit(f'{cubin}: no kernel<{dim}>')

def names(source, known, dim):
    raw = lzma.open(source, 'rt') if source.endswith('.xz') else open(source)
    lines = raw.read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith('"Address"'))
    rows = list(csv.DictReader(io.StringIO('\n'.join(lines[start:]))))
    table = {}
    for op, r in zip(text(known, dim), rows):
        words = r['Source'].split() or ['?']
        table.setdefault(op, (words[1] if words[0].startswith('@') else words[0]).split('.')[0])
    return table

cubin, dim, source, known = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
table = names(source, known, 128)  # the source page is of kernel<128>; opcodes are shared
ops = [table.get(o, '?') for o in text(cubin, dim)]
hg = [i for i, o in enumerate(ops) if o == 'HGMMA']
runs = [[hg[0]]]
for a, b in zip(hg, hg[1:]):
    (runs[-1].append(b) if b - a < 40 else runs.append([b]))
for r in runs:
    waits = [i for i in range(r[-1] + 1, len(ops)) if ops[i] == 'WARPGROUP'][:2]
    nxt = next((i for i in range(r[-1] + 1, len(ops)) if ops[i] == 'HGMMA'), len(ops))
    mufu = [i for i in range(r[-1] + 1, nxt) if ops[i] == 'MUFU']
    if len(waits) == 2:
        print(f'HGMMA x{len(r)} at {r[0]}: waits at {waits}, MUFU between them {sum(waits[0] < i < waits[1] for i in mufu)},'
              f' after the second {sum(i > waits[1] for i in mufu)}')

#!/usr/bin/env python3
"""Compare kernels of two PTX files, modulo mangled names and basic-block label numbers.

Made for the attn-bwd helper's last step: device call 3 could not start, so the final
commit (617b050) was compared with the variant build (d009605) that device call 2 ran:
  nvcc -DFMT_SHARED -Isrc -O3 -DNDEBUG --generate-code=arch=compute_90a,code=[compute_90a] \
       --expt-relaxed-constexpr -std=c++17 -x cu -ptx src/backend/cuda/attention_backward_sm90.cu -o X.ptx
  ptx_compare.py old.ptx new.ptx dkdv_sm90_kernelILi128ELi21ELi4E=dkdv_sm90_kernelILi128EE ...
Output of that run: ptx_compare.txt.
"""
import re
import sys


def kernels(path):
    txt = open(path).read()
    out = {}
    for m in re.finditer(r'\.entry (\S+)\(', txt):
        end = txt.index('\n}\n', m.start())
        body = txt[m.start():end]
        body = re.sub(r'_ZN4duet\w*?(dkdv|dq|forward)_sm90_kernel\w*', r'\1_K', body)
        body = re.sub(r'__GLOBAL__N__[0-9a-f_]+', 'ANON', body)
        body = re.sub(r'\$L__BB\d+_', '$L__BB_', body)
        out[m.group(1)] = body
    return out


a, b = kernels(sys.argv[1]), kernels(sys.argv[2])
for pair in sys.argv[3:]:
    x, y = pair.split('=')
    ax = [v for k, v in a.items() if x in k]
    by = [v for k, v in b.items() if y in k]
    same = len(ax) == 1 and len(by) == 1 and ax[0] == by[0]
    print(pair, 'IDENTICAL' if same else 'DIFFERENT')

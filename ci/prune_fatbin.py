#!/usr/bin/env python3
# usage: prune_fatbin.py IN.so OUT.so ARCH[,ARCH...]
# Zeroes, in place, the payload of every .nv_fatbin entry whose SM architecture is not listed
# (90: H100, 87: Jetson Orin); the ELF layout is unchanged, only the listed architectures'
# kernels stay loadable (what nvprune does to object files). Entry headers are read by a layout
# known from public reverse engineering (kind, header size, payload size, arch at byte 28):
# check the printed counts before trusting a new CUDA release. Used by ci/gpu-bundle.
import struct, sys
src, dst, keep = sys.argv[1], sys.argv[2], {int(a) for a in sys.argv[3].split(',')}
data = bytearray(open(src,'rb').read())
import subprocess, re
out = subprocess.run(['readelf','-S','-W',src],capture_output=True,text=True).stdout
m = re.search(r'\.nv_fatbin\s+PROGBITS\s+\S+\s+(\S+)\s+(\S+)', out)
if m is None:
    sys.exit(f"{src}: no .nv_fatbin section")
off, size = int(m.group(1),16), int(m.group(2),16)
p, end, zeroed, kept = off, off+size, 0, 0
while p < end:
    magic, ver, hsize, fsize = struct.unpack_from('<IHHQ', data, p)
    if magic != 0xBA55ED50: p += 8; continue
    q, blob_end = p+hsize, p+hsize+fsize
    while q < blob_end:
        kind, _, ehsize, psize = struct.unpack_from('<HHIQ', data, q)
        arch = struct.unpack_from('<I', data, q+28)[0]
        if arch not in keep:
            data[q+ehsize:q+ehsize+psize] = bytes(psize); zeroed += psize
        else:
            kept += 1
        q += ehsize + psize
    p = blob_end
if kept == 0:
    sys.exit(f"{src}: no code for sm_{sorted(keep)} in it: nothing written")
open(dst,'wb').write(data)
print(f"{src}: zeroed {zeroed/1e6:.1f} MB of other architectures' code, kept {kept} sm_{sorted(keep)} entries")

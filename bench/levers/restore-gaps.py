#!/usr/bin/env python3
"""restore-gaps.py RESTORE_LOG (tried 38): the gaps of a CRIU restore.log (ms).
criu= total; ipc_mnt= last IPC line -> "Restoring mount namespace";
a= "mnt: Move the root to .../NN-0000000000" -> "Running post-setup-namespaces"
(pivot/umount of the temporary tree + network_lock_internal);
b= "Running network-unlock scripts" -> next line after its RPC line
(runc's RPC answer + network_unlock_internal)."""
import re, sys

TS = re.compile(r'^\((\d+\.\d+)\)')
lines = open(sys.argv[1], errors='replace').read().splitlines()
t = [(float(m.group(1)) * 1000, l) for l in lines for m in [TS.match(l)] if m]
out = {'criu': t[-1][0] if t else None}
ipc = None
for i, (ts, l) in enumerate(t):
    if 'IPC' in l:
        ipc = ts
    elif 'Restoring mount namespace' in l and ipc is not None:
        out['ipc_mnt'] = ts - ipc
    elif re.search(r'mnt: Move the root to \S+/\d+-0+$', l):
        mv = ts
    elif 'post-setup-namespaces' in l:
        out['a'] = ts - mv
    elif 'network-unlock scripts' in l:
        out['b'] = t[i + 2][0] - ts
print(' '.join('%s=%.1f' % (k, v) for k, v in out.items() if v is not None))

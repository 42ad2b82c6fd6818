#!/usr/bin/env python3
"""nft-lock-micro.py N (tried 38): CRIU's nftables network lock/unlock cost
alone, in a fresh network namespace (run it as `unshare -n python3 nft-lock-micro.py N`): per round,
nft_ctx_new + "create table inet T" (first: creates; second: EEXIST, as at
restore, where the dump's table is still there) + "delete table inet T"
(as network_unlock_internal), each through libnftables as CRIU does.
Then CRIU's whole lock (table, two base chains, two rules: lock_full), the
create of the restore on it (create_eexist_full) and its unlock (delete_full, then
ctx_free_after_delete: nft_ctx_free, which closes the netlink socket).
"add table" on the existing table (add_existing_full) is the alternative
that does not fail. Prints medians (ms)."""
import ctypes, os, statistics, sys, time

nft = ctypes.CDLL('libnftables.so.1')
nft.nft_ctx_new.restype = ctypes.c_void_p
nft.nft_ctx_new.argtypes = [ctypes.c_uint32]
nft.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
nft.nft_ctx_free.argtypes = [ctypes.c_void_p]
nft.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]

R = {k: [] for k in ('ctx_new', 'create_ok', 'create_eexist', 'delete', 'ctx_free', 'lock_full', 'create_eexist_full', 'delete_full', 'ctx_free_after_eexist', 'add_existing_full', 'ctx_free_after_delete')}


def timed(key, f, *a):
    t0 = time.perf_counter(); r = f(*a); R[key].append((time.perf_counter() - t0) * 1000); return r


for i in range(int(sys.argv[1])):
    tbl = b'CRIU-%d' % i
    c = timed('ctx_new', nft.nft_ctx_new, 0); nft.nft_ctx_buffer_error(c)
    assert timed('create_ok', nft.nft_run_cmd_from_buffer, c, b'create table inet ' + tbl) == 0
    timed('ctx_free', nft.nft_ctx_free, c)
    c = nft.nft_ctx_new(0); nft.nft_ctx_buffer_error(c)
    assert timed('create_eexist', nft.nft_run_cmd_from_buffer, c, b'create table inet ' + tbl) != 0
    nft.nft_ctx_free(c)
    c = nft.nft_ctx_new(0); nft.nft_ctx_buffer_error(c)
    assert timed('delete', nft.nft_run_cmd_from_buffer, c, b'delete table inet ' + tbl) == 0
    # CRIU's whole lock (net.c nftables_lock_network_internal), then its unlock
    t = b'inet ' + tbl
    t0 = time.perf_counter()
    for cmd in (b'create table %s', b'add chain %s output { type filter hook output priority 0; policy drop; }',
                b'add rule %s output meta mark 0xC114 accept', b'add chain %s input { type filter hook input priority 0; policy drop; }',
                b'add rule %s input meta mark 0xC114 accept'):
        assert nft.nft_run_cmd_from_buffer(c, cmd % t) == 0
    R['lock_full'].append((time.perf_counter() - t0) * 1000)
    nft.nft_ctx_free(c)
    c = nft.nft_ctx_new(0); nft.nft_ctx_buffer_error(c)
    assert timed('create_eexist_full', nft.nft_run_cmd_from_buffer, c, b'create table ' + t) != 0
    timed('ctx_free_after_eexist', nft.nft_ctx_free, c)
    c = nft.nft_ctx_new(0); nft.nft_ctx_buffer_error(c)  # "add" instead of "create": no EEXIST
    assert timed('add_existing_full', nft.nft_run_cmd_from_buffer, c, b'add table ' + t) == 0
    nft.nft_ctx_free(c)
    c = nft.nft_ctx_new(0); nft.nft_ctx_buffer_error(c)
    assert timed('delete_full', nft.nft_run_cmd_from_buffer, c, b'delete table ' + t) == 0
    timed('ctx_free_after_delete', nft.nft_ctx_free, c)  # closes the netlink socket
print(' '.join('%s=%.2f' % (k, statistics.median(v)) for k, v in R.items()), 'n=%s' % sys.argv[1])

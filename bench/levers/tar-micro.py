"""tar-micro.py MOUNT_ROOT (tried 37): GNU tar against faas-criu-tar (/tmp/tar/bin/tar) alone, CRIU's
extract of /tmp/tar/gnu-dev.tgz into a tmpfs and create of MOUNT_ROOT (e.g. /proc/PID/root/dev), 40 runs
each alternated; medians in ms, Python's spawn included."""
import subprocess, time, os, shutil, statistics, tempfile, sys
img = open('/tmp/tar/gnu-dev.tgz','rb').read()
src = sys.argv[1]
res = {'gnu-x': [], 'ours-x': [], 'gnu-c': [], 'ours-c': []}
bins = {'gnu': '/usr/bin/tar', 'ours': '/tmp/tar/bin/tar'}
X = ['--extract','--gzip','--no-unquote','--no-wildcards','--directory']
C = ['--create','--gzip','--no-unquote','--no-wildcards','--one-file-system','--check-links','--preserve-permissions','--sparse','--numeric-owner','--directory','/proc/self/fd/0','.']
for i in range(40):
    for k in (['gnu','ours'] if i % 2 else ['ours','gnu']):
        d = tempfile.mkdtemp(dir='/dev/shm')
        with open('/tmp/tar/gnu-dev.tgz','rb') as f:
            t = time.perf_counter(); subprocess.run([bins[k]]+X+[d], stdin=f, env={'PATH':'/usr/bin:/bin'}, check=True); res[k+'-x'].append((time.perf_counter()-t)*1000)
        shutil.rmtree(d)
        fd = os.open(src, os.O_RDONLY|os.O_DIRECTORY)
        with open('/tmp/tar/out.tgz','wb') as o:
            t = time.perf_counter(); subprocess.run([bins[k]]+C, stdin=fd, stdout=o, env={'PATH':'/usr/bin:/bin'}, check=True); res[k+'-c'].append((time.perf_counter()-t)*1000)
        os.close(fd)
print({k: round(statistics.median(v),2) for k,v in res.items()}, open('/proc/loadavg').read().split()[0])

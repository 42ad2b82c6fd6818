#!/usr/bin/env python3
# timeline-wakes.py PORT AUTHFILE OUTDIR N: N wakes of dsfn, timed in-process (t0 just before connect; ttfb to the first byte)
import sys, time, socket, base64, shutil, os, http.client
port, auth, out, n = int(sys.argv[1]), open(sys.argv[2]).read().strip(), sys.argv[3], int(sys.argv[4])
os.makedirs(out, exist_ok=True)
hdr = {'Authorization': 'Basic ' + base64.b64encode(auth.encode()).decode()}
for i in range(1, n + 1):
    c = http.client.HTTPConnection('localhost', port, timeout=30)
    c.request('POST', '/system/scale-function/dsfn', body='{"serviceName":"dsfn","replicas":0}', headers=hdr)
    r = c.getresponse(); r.read(); c.close()
    if r.status >= 300: print('scale failed', r.status)
    time.sleep(0.8)
    t0 = time.time()
    s = socket.create_connection(('localhost', port))
    s.sendall(b'GET /function/dsfn/count HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    first = s.recv(1); t1 = time.time()
    body = first
    while True:
        b = s.recv(65536)
        if not b: break
        body += b
    s.close()
    count = body.split(b'\r\n\r\n', 1)[-1].decode().strip()
    load = open('/proc/loadavg').read().split()[0]
    line = f't0={t0:.6f} ttfb={t1 - t0:.6f} count={count} load={load}'
    open(f'{out}/{i}.meta', 'w').write(line + '\n')
    time.sleep(0.4)
    try: shutil.copy('/var/lib/faas-criu/criu-work/restore.log', f'{out}/{i}.restore.log')
    except OSError: pass
    print(line, flush=True)

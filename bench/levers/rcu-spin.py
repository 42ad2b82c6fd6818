import sys, time
# spin.py SECONDS: a CPU-bound loop; prints iterations (millions) per second, median and total
dur = float(sys.argv[1]); end = time.monotonic() + dur
n = 0
while True:
    for _ in range(20000):
        pass
    n += 1
    if n % 16 == 0 and time.monotonic() >= end:
        break
print("%.3f" % (n * 20000 / dur / 1e6))

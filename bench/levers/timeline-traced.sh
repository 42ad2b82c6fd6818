#!/bin/bash
# timeline-traced.sh PORT AUTHFILE OUTDIR N: timeline-wakes.py under a light system-wide perf record (exec/fork/exit, fsync, fdatasync)
out=$3; mkdir -p $out
perf record -q -a -k mono -e sched:sched_process_exec -e sched:sched_process_fork -e sched:sched_process_exit -e syscalls:sys_enter_fsync -e syscalls:sys_exit_fsync -e syscalls:sys_enter_fdatasync -e syscalls:sys_exit_fdatasync -o $out/perf.data 2>/dev/null &
pp=$!; sleep 1
python3 -c "import time;print(time.time()-time.clock_gettime(time.CLOCK_MONOTONIC))" > $out/off
python3 "$(dirname "$0")/timeline-wakes.py" $1 $2 $out $4
kill -INT $pp; wait $pp

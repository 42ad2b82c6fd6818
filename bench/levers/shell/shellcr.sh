#!/usr/bin/env bash
# Hibernate / wake a function container's process under the holder, CRIU
# driven directly (README.md). The container stays up in Docker.
#   shellcr.sh dump NAME      criu dump of the holder's child; container left running
#   shellcr.sh restore NAME   criu restore -d into the container's namespaces and cgroups
# Images in /tmp/shell/img/NAME; logs there. DOCKER_HOST names the engine.
set -euo pipefail
cmd=$1 name=$2
img=/tmp/shell/img/$name
d=/run/faas-criu-shell/$name          # the holder's directory (marker)
tmpfs="/dev /dev/shm /sys/fs/cgroup /proc/acpi /sys/firmware"
cgs="cpu cpuacct cpuset memory devices freezer blkio pids systemd"
holder=$(docker inspect -f '{{.State.Pid}}' "$name")
id=$(docker inspect -f '{{.Id}}' "$name")
ino() { readlink "/proc/$holder/ns/$1" | tr -dc 0-9; }
case "$cmd" in
dump)
	# The function: in the container's cgroup, not the holder, its parent the holder
	# (first start) or outside the container (after a restore, criu's reaper).
	procs=$(cat "/sys/fs/cgroup/pids/docker/$id/cgroup.procs")
	fn=
	for p in $procs; do
		[ "$p" = "$holder" ] && continue
		pp=$(awk '{print $4}' "/proc/$p/stat")
		if [ "$pp" = "$holder" ] || ! grep -qx "$pp" <<<"$procs"; then fn=$p; break; fi
	done
	[ -n "$fn" ] || { echo "no function under holder $holder" >&2; exit 1; }
	nspid=$(awk '/^NSpid/ {print $NF}' "/proc/$fn/status")
	rm -rf "$img" && mkdir -p "$img"
	ext=(--external "pid[$(ino pid)]:pidns" --external "net[$(ino net)]:netns")
	for m in /etc/hosts /etc/hostname /etc/resolv.conf /.faas-criu; do ext+=(--external "mnt[$m]:m$m"); done
	for c in $cgs; do ext+=(--external "mnt[/sys/fs/cgroup/$c]:cg-$c"); done
	if [ -d "$d/t" ]; then   # setup.sh ext-tmpfs: the tmpfs mounts are binds of host dirs
		for m in $tmpfs; do ext+=(--external "mnt[$m]:t$m"); done
	fi
	# Before the dump: its exit is a hibernation. The holder's start time ties the
	# marker to this run of the container (a stale one is ignored).
	echo "$nspid $(sed 's/.*) //' "/proc/$holder/stat" | awk '{print $20}')" >"$d/hibernated"
	if ! criu dump -t "$fn" -D "$img" -o dump.log -v4 --tcp-established "${ext[@]}"; then
		rm -f "$d/hibernated"; echo "dump failed: $img/dump.log" >&2; exit 1
	fi
	# Its pid must be free in the container before a restore: a dumped process whose
	# parent is the host's init stays a zombie until that init reaps it (late here:
	# else "Can't fork for 13: File exists").
	for _ in $(seq 1 5000); do [ -e "/proc/$fn" ] || break; sleep 0.001; done
	;;
restore)
	root=$(docker inspect -f '{{.GraphDriver.Data.MergedDir}}' "$name")
	sb=$(docker inspect -f '{{.HostConfig.NetworkMode}}' "$name"); sb=${sb#container:}
	cdir=$(docker inspect -f '{{.ResolvConfPath}}' "$sb"); cdir=${cdir%/resolv.conf}
	# One exec per fd: one combined exec once left all but the first unopened here (cause not found).
	exec 20<"/proc/$holder/ns/pid"
	exec 21<"/proc/$holder/ns/net"
	exec 22>"/proc/$holder/fd/1"   # the container's stdout and stderr pipes (to the shim, docker logs)
	exec 23>"/proc/$holder/fd/2"
	ext=(--inherit-fd "fd[20]:pidns" --inherit-fd "fd[21]:netns"
		--inherit-fd "fd[22]:$(readlink /proc/$holder/fd/1)" --inherit-fd "fd[23]:$(readlink /proc/$holder/fd/2)"
		--external "mnt[m/etc/hosts]:$cdir/hosts" --external "mnt[m/etc/hostname]:$cdir/hostname"
		--external "mnt[m/etc/resolv.conf]:$cdir/resolv.conf" --external "mnt[m/.faas-criu]:$d")
	for c in $cgs; do ext+=(--external "mnt[cg-$c]:/sys/fs/cgroup/$c/docker/$id"); done
	if [ -d "$d/t" ]; then
		for m in $tmpfs; do ext+=(--external "mnt[t$m]:$d/t$m"); done
	fi
	criu restore -d -D "$img" -o restore.log -v4 --root "$root" --tcp-established "${ext[@]}" \
		--cgroup-root "/docker/$id" --join-ns "ipc:/proc/$holder/ns/ipc" --join-ns "uts:/proc/$holder/ns/uts"
	kill -USR1 "$holder"   # the holder adopts the restored pid (the one it had before the dump)
	rm -f "$d/hibernated"
	;;
esac

#!/usr/bin/env bash
# Images, network and containers of the shell probe (README.md).
#   setup.sh images            build shell-fixture:1 and shell-sandbox:1 (FROM scratch, offline)
#   setup.sh shell NAME IP     sandbox NAME-sb at IP + function container NAME under the holder
#   setup.sh docker NAME IP    sandbox NAME-sb at IP + plain function container NAME (Docker's way)
# DOCKER_HOST must name the private engine. Network shellnet 10.61.251.0/24.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
st=/tmp/shell
net=shellnet
mkdir -p $st
case "$1" in
images)
	rm -rf $st/img-fx $st/img-sb && mkdir -p $st/img-fx/tmp $st/img-sb
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o $st/img-fx/fn ./test/fixture)
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o $st/img-sb/sb ./bench/levers/shell/sandbox)
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o $st/holder ./bench/levers/shell/holder)
	touch $st/img-fx/tmp/.keep
	printf 'FROM scratch\nCOPY fn /fn\nCOPY tmp /tmp\nENTRYPOINT ["/fn"]\n' >$st/img-fx/Dockerfile
	printf 'FROM scratch\nCOPY sb /sb\nENTRYPOINT ["/sb"]\n' >$st/img-sb/Dockerfile
	docker build -q -t shell-fixture:1 $st/img-fx
	docker build -q -t shell-sandbox:1 $st/img-sb
	docker network inspect $net >/dev/null 2>&1 || docker network create --subnet 10.61.251.0/24 $net
	;;
shell | docker)
	name=$2 ip=$3
	docker run -d --name "$name-sb" --network $net --ip "$ip" shell-sandbox:1 >/dev/null
	# FIXTURE_ENV (e.g. "-e STATE_MB=100") and MEM (default 64m) for the heavy fixture.
	# shellcheck disable=SC2206
	common=(--name "$name" --network "container:$name-sb" -e GODEBUG=multipathtcp=0 ${FIXTURE_ENV:-}
		--memory "${MEM:-64m}" --memory-swap "${MEM:-64m}" --log-driver json-file --log-opt max-size=10m --log-opt max-file=2)
	if [ "$1" = shell ]; then
		# The holder's directory: its binary, and the host's hibernation marker (read-only inside).
		d=/run/faas-criu-shell/$name
		mkdir -p "$d" && cp $st/holder "$d/init"
		docker create "${common[@]}" -v "$d:/.faas-criu:ro" --entrypoint /.faas-criu/init shell-fixture:1 -- /fn >/dev/null
	else
		docker create "${common[@]}" shell-fixture:1 >/dev/null
	fi
	docker start "$name" >/dev/null
	;;
ext-tmpfs)
	# Variant: host directories standing in for the container's five tmpfs mounts
	# (/dev, /dev/shm, /sys/fs/cgroup, /proc/acpi, /sys/firmware), so that CRIU binds
	# them on restore instead of tar-ing their content on every dump and restore.
	name=$2
	h=$(docker inspect -f '{{.State.Pid}}' "$name")
	t=/run/faas-criu-shell/$name/t
	rm -rf "$t" && mkdir -p "$t/dev" "$t/sys/fs/cgroup" "$t/proc/acpi" "$t/sys/firmware"
	for e in /proc/$h/root/dev/*; do
		if [ -d "$e" ] && [ ! -L "$e" ]; then mkdir -m "$(stat -c %a "$e")" "$t/dev/${e##*/}"; else cp -a "$e" "$t/dev/"; fi
	done
	for c in /proc/$h/root/sys/fs/cgroup/*; do mkdir "$t/sys/fs/cgroup/${c##*/}"; done
	;;
*) echo "usage: $0 images | shell NAME IP | docker NAME IP | ext-tmpfs NAME" >&2; exit 2 ;;
esac

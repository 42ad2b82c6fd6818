#!/usr/bin/env bash
# Idempotent host setup for faas-criu, called by `make run` and `make test`:
#   - Docker engine installed, experimental mode and live-restore on, running;
#   - /etc/criu/runc.conf has tcp-established and a work-dir that survives,
#     and the options that make restores cheaper (nftables network lock,
#     no CRIU cgroup management) when that CRIU passes the probe with them;
#   - CRIU's kernel-feature cache kept on a small tmpfs when /run is not one;
#   - a CRIU that really checkpoints and restores a container (proved by a
#     dump/restore probe, not by a version string), cached in a stamp file.
# Supported: Debian 12 (root). Quick when everything is already done.
#
# Knobs:
#   FAAS_CRIU_FORCE_CRIU_BUILD=1  ignore the stamp and the installed/packaged
#                                 CRIU: build CRIU from Debian unstable's
#                                 source, install it to /usr/local/sbin/criu
#                                 and probe it.
#   FAAS_CRIU_RCU_EXPEDITED=on    (the default) expedited RCU grace periods
#                                 for the whole host: writes 1 to
#                                 /sys/kernel/rcu_expedited (see
#                                 ensure_rcu_expedited); off (or 0, false,
#                                 no) writes 0; keep leaves it as found. Any
#                                 other value stops setup.
set -euo pipefail
set -E
shopt -s nullglob

export DEBIAN_FRONTEND=noninteractive

LOG_DIR=/var/log/faas-criu
STATE_DIR=/var/lib/faas-criu
CACHE_DIR=/var/cache/faas-criu
CRIU_SRC_DIR=$CACHE_DIR/criu-src
STAMP=$STATE_DIR/criu-verified
DOCKERD_LOG=$LOG_DIR/dockerd.log
APT_LOG=$LOG_DIR/apt.log
PROBE_LOG=$LOG_DIR/criu-probe.log
BUILD_LOG=$LOG_DIR/criu-build.log
DAEMON_JSON=/etc/docker/daemon.json
DOCKER_PIDFILE=/var/run/docker.pid
RUNC_CONF=/etc/criu/runc.conf
KDAT_FILE=/run/criu.kdat
KDAT_DIR=/run/faas-criu-kdat
CRIU_WORK_DIR=$STATE_DIR/criu-work
SRC_LIST=/etc/apt/sources.list.d/faas-criu-unstable-src.sources
DEFAULT_MIRROR=http://deb.debian.org/debian
CRIU_DST=/usr/local/sbin/criu
PROBE_IMAGE=faas-criu/criu-probe:latest
PROBE_NAME=faas-criu-criu-probe
PROBE_CP=probe-cp
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

APT_UPDATED=
CONFIG_CHANGED=
LIVE_RESTORE_ADDED=
DOCKERD_STARTED_PID=
DOCKER_VERSION=
CRIU_PATH=
PYTHON=
ORIG=
WORK_DIR=
PROBE_BIN=
PROBE_IMAGE_BUILT=
PROBE_WHY=
PROBE_LOG_STARTED=
PROBE_RUNTIME=

log() { echo "setup: $*"; }
die() {
	local line
	for line in "$@"; do echo "setup: $line" >&2; done
	exit 1
}
on_err() { echo "setup: failed (line $1: $2); see the messages above" >&2; }
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR

cleanup() {
	if [ -n "$PROBE_IMAGE_BUILT" ]; then
		remove_probe_container
		docker rmi -f "$PROBE_IMAGE" >/dev/null 2>&1 || true
	fi
	if [ -n "$WORK_DIR" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- prereqs

# go_wanted prints the Go version the project's go.mod requires (its "go"
# line), so that the message never falls behind it.
go_wanted() {
	local v
	v=$(sed -n 's/^go[[:space:]]\{1,\}\([0-9][0-9.]*\).*/\1/p' "$SCRIPT_DIR/../go.mod" 2>/dev/null | head -n 1) || true
	echo "${v:-(the version in go.mod)}"
}

check_prereqs() {
	[ "$EUID" -eq 0 ] || die "must run as root: run it as root, e.g. \`sudo make run\`"

	# runc (started by dockerd/containerd) finds criu on PATH; a source-built
	# criu in /usr/local/sbin must win over a packaged one in /usr/sbin.
	case ":$PATH:" in
	*:/usr/local/sbin:*:/usr/sbin:*) ;;
	*) PATH=/usr/local/sbin:$PATH ;;
	esac
	case ":$PATH:" in
	*:/usr/sbin:*) ;;
	*) PATH=$PATH:/usr/sbin:/sbin ;;
	esac
	# sudo resets PATH (secure_path), which drops the default Go location.
	if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
		PATH=$PATH:/usr/local/go/bin
	fi
	export PATH
	command -v go >/dev/null 2>&1 ||
		die "go not found on PATH: install Go $(go_wanted)+ (go.mod's go line) from https://go.dev/dl/ and put /usr/local/go/bin on PATH"
	# The Go build cache needs a home; sudo -H or env -i may leave none.
	if [ -z "${HOME:-}" ]; then export HOME=/root; fi

	mkdir -p "$LOG_DIR" "$STATE_DIR" "$CACHE_DIR"
}

# Checked only when something must be installed, so a machine that already
# has everything needs no apt.
require_apt() {
	command -v apt-get >/dev/null 2>&1 ||
		die "apt-get not found (this script installs packages on Debian only):" \
			"install Docker engine 20.10+ (with dockerd) and CRIU 4.2+ yourself, then run it again"
}

# apt_get ARGS...: apt-get with a lock timeout, output to $APT_LOG; dies on
# failure unless APT_SOFT=1, then it returns 1.
apt_get() {
	require_apt
	echo "=== $(date -Is) apt-get $*" >>"$APT_LOG"
	if ! apt-get -o DPkg::Lock::Timeout=60 "$@" >>"$APT_LOG" 2>&1; then
		if [ "${APT_SOFT:-}" = 1 ]; then
			log "apt-get $* failed; see $APT_LOG"
			return 1
		fi
		tail -n 15 "$APT_LOG" >&2
		die "apt-get $* failed; full output in $APT_LOG"
	fi
}

apt_update() {
	require_apt
	log "apt-get update"
	apt_get update
	APT_UPDATED=1
}

# apt_install PKG...: install with --no-install-recommends, updating the
# package lists first (once per run).
apt_install() {
	require_apt
	if [ -z "$APT_UPDATED" ]; then apt_update; fi
	log "apt-get install $*"
	apt_get install -y --no-install-recommends "$@"
}

# ---------------------------------------------------------------- host settings

RCU_EXPEDITED_FILE=/sys/kernel/rcu_expedited
RCU_NORMAL_FILE=/sys/kernel/rcu_normal
RCU_WANT=

# rcu_expedited_wanted: set RCU_WANT to what FAAS_CRIU_RCU_EXPEDITED asks:
# 1, 0 or keep. Booleans are read as the provider reads its own (any case);
# unset or empty is the default, on. Anything else stops setup: a value not
# understood is never taken for off.
rcu_expedited_wanted() {
	local v=${FAAS_CRIU_RCU_EXPEDITED:-}
	v=${v//[[:space:]]/}
	case ${v,,} in
	'' | 1 | true | yes | on) RCU_WANT=1 ;;
	0 | false | no | off) RCU_WANT=0 ;;
	keep) RCU_WANT=keep ;;
	*) die "FAAS_CRIU_RCU_EXPEDITED='$FAAS_CRIU_RCU_EXPEDITED' is not understood: use on (or 1, true, yes; the default)," \
		"off (or 0, false, no) or keep (leave $RCU_EXPEDITED_FILE as it is)" ;;
	esac
}

# ensure_rcu_expedited: expedited RCU grace periods for the whole host
# (FAAS_CRIU_RCU_EXPEDITED, default on). CRIU's nftables network lock waits
# for two normal grace periods in every restore (a failing `create table`
# aborts its batch: synchronize_rcu; closing libnftables' socket:
# __flush_work), about 23 ms of a quiet trivial wake; expedited, 0.1 ms
# (bench/tried.md 39, 40). The cost falls on the rest of the box: every
# expedited grace period interrupts every CPU. A file setup cannot write
# stops it unless the knob says keep, rather than running on without the
# setting it was asked for; the kernel command line (rcupdate.rcu_expedited=1)
# or keep are the ways on for a host whose /sys is read-only.
ensure_rcu_expedited() {
	local now
	rcu_expedited_wanted
	if [ ! -r "$RCU_EXPEDITED_FILE" ]; then
		[ "$RCU_WANT" = keep ] && { log "no $RCU_EXPEDITED_FILE on this kernel: RCU left as it is (FAAS_CRIU_RCU_EXPEDITED=keep)"; return; }
		die "no $RCU_EXPEDITED_FILE to read (FAAS_CRIU_RCU_EXPEDITED asks for $RCU_WANT):" \
			"set FAAS_CRIU_RCU_EXPEDITED=keep to go on without it"
	fi
	now=$(cat "$RCU_EXPEDITED_FILE")
	if [ "$RCU_WANT" = keep ]; then
		log "expedited RCU grace periods left as found: $RCU_EXPEDITED_FILE is $now (FAAS_CRIU_RCU_EXPEDITED=keep)"
	elif [ "$now" = "$RCU_WANT" ]; then
		log "expedited RCU grace periods $(rcu_word "$now"): $RCU_EXPEDITED_FILE already $now"
	elif ! { echo "$RCU_WANT" >"$RCU_EXPEDITED_FILE"; } 2>/dev/null || [ "$(cat "$RCU_EXPEDITED_FILE")" != "$RCU_WANT" ]; then
		die "cannot write $RCU_WANT to $RCU_EXPEDITED_FILE (it is $now; a read-only /sys, as in a container?):" \
			"run setup where /sys is writable, boot with rcupdate.rcu_expedited=$RCU_WANT on the kernel command line," \
			"or set FAAS_CRIU_RCU_EXPEDITED=keep to go on with the kernel's setting"
	else
		log "expedited RCU grace periods $(rcu_word "$RCU_WANT"): wrote $RCU_WANT to $RCU_EXPEDITED_FILE (was $now; FAAS_CRIU_RCU_EXPEDITED=${FAAS_CRIU_RCU_EXPEDITED:-on})"
	fi
	# rcu_normal=1 overrides rcu_expedited: every grace period is normal.
	if [ "$(cat "$RCU_EXPEDITED_FILE")" = 1 ] && [ "$(cat "$RCU_NORMAL_FILE" 2>/dev/null || echo 0)" = 1 ]; then
		log "WARNING: $RCU_NORMAL_FILE is 1, which overrides $RCU_EXPEDITED_FILE: grace periods stay normal"
	fi
}

rcu_word() { if [ "$1" = 1 ]; then echo on; else echo off; fi; }

# ---------------------------------------------------------------- docker

ensure_docker_installed() {
	if ! command -v dockerd >/dev/null 2>&1; then
		log "no dockerd found: installing docker.io"
		apt_install docker.io
		hash -r
		command -v dockerd >/dev/null 2>&1 || die "docker.io installed but dockerd is still not on PATH ($PATH)"
	fi
	command -v docker >/dev/null 2>&1 ||
		die "dockerd is installed but the docker client is not: install docker.io (or docker-ce-cli)"
}

# find_python: set PYTHON, installing python3-minimal if there is none.
find_python() {
	if [ -x /usr/bin/python3 ]; then
		PYTHON=/usr/bin/python3
	elif command -v python3 >/dev/null 2>&1; then
		PYTHON=$(command -v python3)
	else
		apt_install python3-minimal
		PYTHON=/usr/bin/python3
	fi
}

# daemon_json_python [ARG...]: run the Python program on stdin after
# daemon_json_lib's, with sys.argv[1] (path) daemon.json and ARG... after it.
# (One program given with -c rather than piped in: a pipe's exit status
# would be the writer's too, under pipefail.)
daemon_json_python() {
	find_python
	"$PYTHON" -c "$(
		daemon_json_lib
		cat
	)" "$DAEMON_JSON" "$@"
}

# daemon_json_lib: what setup's Python steps on daemon.json share: path, and
# load(path), its JSON ({} when empty; exit 2 when unreadable), and
# save(path, cfg), which replaces it at once with cfg, keeping its mode.
daemon_json_lib() {
	cat <<'EOF'
import json, os, sys
path = sys.argv[1]
def load(path):
    try:
        with open(path) as f:
            text = f.read()
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError) as e:
        sys.stderr.write("setup: cannot parse %s: %s\n" % (path, e))
        sys.exit(2)
def save(path, cfg):
    tmp = path + ".faas-criu.tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    os.replace(tmp, path)
EOF
}

# ensure_engine_config: make daemon.json contain "experimental": true
# (checkpoint and restore need it) and "live-restore": true, keeping every
# other key. Live-restore keeps containers, and the memory of the functions
# in them, running while the engine is down, crashed or being upgraded;
# checkpoint and restore work with it (TestEngineRestart). A "live-restore"
# the file already sets to false is left alone, with a warning. Sets
# CONFIG_CHANGED=1 when the file was written, and LIVE_RESTORE_ADDED=1 when
# live-restore was turned on by it.
ensure_engine_config() {
	mkdir -p "$(dirname "$DAEMON_JSON")"
	if [ ! -e "$DAEMON_JSON" ]; then
		printf '{\n  "experimental": true,\n  "live-restore": true\n}\n' >"$DAEMON_JSON"
		CONFIG_CHANGED=1
		LIVE_RESTORE_ADDED=1
		log "wrote $DAEMON_JSON with experimental mode and live-restore"
		return
	fi
	local rc=0
	daemon_json_python <<'EOF' || rc=$?
cfg = load(path)
if not isinstance(cfg, dict):
    sys.stderr.write("setup: %s is not a JSON object\n" % path)
    sys.exit(2)
changed = 0
if cfg.get("experimental") is not True:
    cfg["experimental"] = True
    changed |= 1
if "live-restore" not in cfg:
    cfg["live-restore"] = True
    changed |= 2
elif cfg["live-restore"] is not True:
    sys.stderr.write("setup: %s sets \"live-restore\": %s; left as it is, but then an engine crash or restart loses running functions' memory\n" % (path, json.dumps(cfg["live-restore"])))
if not changed:
    sys.exit(0)
save(path, cfg)
sys.exit(10 + changed)
EOF
	case $rc in
	0) ;;
	11 | 12 | 13)
		CONFIG_CHANGED=1
		if [ $(((rc - 10) & 1)) = 1 ]; then log "set \"experimental\": true in $DAEMON_JSON (other keys kept)"; fi
		if [ $(((rc - 10) & 2)) = 2 ]; then
			LIVE_RESTORE_ADDED=1
			log "set \"live-restore\": true in $DAEMON_JSON (other keys kept)"
		fi
		;;
	*) die "could not update $DAEMON_JSON: fix it to be a valid JSON object and run again" ;;
	esac
}

docker_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
docker_experimental() { [ "$(docker info --format '{{.ExperimentalBuild}}' 2>/dev/null)" = true ]; }
docker_live_restore() { [ "$(docker info --format '{{.LiveRestoreEnabled}}' 2>/dev/null)" = true ]; }
have_systemd() { [ -d /run/systemd/system ]; }

# dockerd_pid: the pid in the docker pid file if that process is alive.
dockerd_pid() {
	local pid
	[ -r "$DOCKER_PIDFILE" ] || return 0
	pid=$(cat "$DOCKER_PIDFILE" 2>/dev/null || true)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

# start_dockerd_by_hand: dockerd in its own session with no inherited fds,
# so it survives this script and does not keep a caller's pipe (make, CI,
# `| cat`) open.
start_dockerd_by_hand() {
	if [ -n "$(dockerd_pid)" ]; then
		log "dockerd (pid $(dockerd_pid)) is running but not answering yet; waiting"
		return
	fi
	log "starting dockerd in the background (log: $DOCKERD_LOG)"
	(
		for fd in /proc/"$BASHPID"/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
		done
		exec setsid dockerd
	) >"$DOCKERD_LOG" 2>&1 </dev/null &
	DOCKERD_STARTED_PID=$!
}

stop_dockerd_by_hand() {
	local pid i
	pid=$(dockerd_pid)
	[ -n "$pid" ] || return 0
	log "stopping dockerd (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 120; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.5
	done
	die "dockerd (pid $pid) did not exit within 60 s after SIGTERM; stop it and run again"
}

start_docker() {
	if have_systemd; then
		log "starting docker with systemctl"
		systemctl start docker || die "systemctl start docker failed: see \`journalctl -u docker\`"
	else
		start_dockerd_by_hand
	fi
}

wait_for_docker() {
	local i
	for ((i = 0; i < 120; i++)); do
		docker_answers && return 0
		if [ -n "$DOCKERD_STARTED_PID" ] && ! kill -0 "$DOCKERD_STARTED_PID" 2>/dev/null; then
			tail -n 10 "$DOCKERD_LOG" >&2
			die "dockerd exited right after starting; see $DOCKERD_LOG"
		fi
		sleep 0.5
	done
	if have_systemd; then
		die "docker engine did not answer within 60 s: see \`journalctl -u docker\`"
	fi
	die "docker engine did not answer within 60 s: see $DOCKERD_LOG"
}

# reload_docker: the engine rereads daemon.json (SIGHUP); live-restore is
# one of the settings it applies without a restart, so containers are not
# touched.
reload_docker() {
	local pid
	if have_systemd && systemctl is-active --quiet docker; then
		log "reloading docker's configuration with systemctl"
		systemctl reload docker || die "systemctl reload docker failed: see \`journalctl -u docker\`"
	else
		pid=$(dockerd_pid)
		[ -n "$pid" ] || die "docker answers but no dockerd pid in $DOCKER_PIDFILE to reload: reload it yourself (kill -HUP)"
		log "reloading dockerd's configuration (SIGHUP to pid $pid)"
		kill -HUP "$pid"
	fi
}

restart_docker() {
	if have_systemd && systemctl is-active --quiet docker; then
		log "restarting docker with systemctl"
		systemctl restart docker || die "systemctl restart docker failed: see \`journalctl -u docker\`"
	else
		stop_dockerd_by_hand
		start_docker
	fi
	wait_for_docker
}

ensure_docker_running() {
	if ! docker_answers; then
		start_docker
		wait_for_docker
	fi
	if ! docker_experimental; then
		log "docker engine is not in experimental mode${CONFIG_CHANGED:+ (config just changed)}: restarting it"
		restart_docker
		docker_experimental ||
			die "docker engine still not in experimental mode after a restart: check $DAEMON_JSON and the daemon's command-line flags"
	fi
	# Only when setup just turned it on: an engine running without it
	# otherwise is someone's choice, left alone.
	if [ -n "$LIVE_RESTORE_ADDED" ] && ! docker_live_restore; then
		reload_docker
		local i
		for ((i = 0; i < 40; i++)); do
			docker_live_restore && break
			sleep 0.25
		done
		docker_live_restore || log "WARNING: the engine did not take up live-restore after a reload (see its log); it applies at its next start"
	fi
	DOCKER_VERSION=$(docker version --format '{{.Server.Version}}')
	DOCKER_VERSION=${DOCKER_VERSION%%+*}
	local lr=off
	if docker_live_restore; then lr=on; fi
	log "docker engine $DOCKER_VERSION running (experimental, live-restore $lr)"
}

# ---------------------------------------------------------------- criu config

ensure_runc_conf() {
	mkdir -p "$(dirname "$RUNC_CONF")" "$CRIU_WORK_DIR"
	# tcp-established: containers holding TCP connections can be dumped.
	conf_add_line tcp-established '^tcp-established$'
	# work-dir: containerd deletes CRIU's per-dump work directory, and with it
	# the dump statistics and logs faas-criu reports; a work-dir here (which
	# overrides runc's) keeps them. An existing work-dir line is kept.
	conf_add_line "work-dir $CRIU_WORK_DIR" '^-*work-dir[ =]'
}

# conf_add_line LINE PATTERN: append LINE to runc.conf unless a line matches
# PATTERN; other lines are never touched.
conf_add_line() {
	if [ -f "$RUNC_CONF" ] && grep -qE "$2" "$RUNC_CONF"; then
		return
	fi
	# Append on a line of its own, even if the file lacks a final newline.
	if [ -s "$RUNC_CONF" ] && [ -n "$(tail -c 1 "$RUNC_CONF")" ]; then
		echo >>"$RUNC_CONF"
	fi
	echo "$1" >>"$RUNC_CONF"
	log "added '$1' to $RUNC_CONF"
}

# ---------------------------------------------------------------- criu speed

# ensure_restore_options: CRIU options in runc.conf that take work off every
# dump and restore, added when this CRIU has them and kept only if the probe
# passes with them (an existing line for the same option is left alone):
#   - network-lock nftables: with tcp-established, CRIU locks the network
#     namespace of the container it dumps (peers' packets are dropped, not
#     answered by a reset, while it sleeps) and unlocks it on restore. Its
#     default lock runs iptables-restore and iptables 2 to 6 times each way,
#     every one a fork and exec in the namespace: most of the 53-78 ms a
#     restore spent after CRIU's network-unlock. nftables does the same
#     in-process (libnftables). A restore takes the method from its dump, so
#     older checkpoints still restore.
#   - manage-cgroups=ignore: runc puts CRIU into the container's cgroups
#     (made and limited by runc) before the restore, so the restored tasks
#     land there anyway; CRIU's own cgroup work (a yard of every controller
#     mounted, each task's cgroups checked and moved) only repeats it.
#     (The "=" matters: "manage-cgroups ignore" would read as soft mode.)
ensure_restore_options() {
	local added=() refused=$STATE_DIR/restore-options-refused
	# Refused before by the probe with this very CRIU, kernel and runc.
	if [ -f "$refused" ] && [ "$(cat "$refused")" = "$(stamp_for "$CRIU_PATH")" ]; then
		return
	fi
	if ! grep -qE '^-*network-lock[ =]' "$RUNC_CONF" 2>/dev/null; then
		if "$CRIU_PATH" check --feature network_lock_nftables >/dev/null 2>&1; then
			conf_add_line "network-lock nftables" '^-*network-lock[ =]'
			added+=("network-lock nftables")
		else
			log "criu at $CRIU_PATH cannot lock networks with nftables: keeping its iptables lock (slower dumps and restores)"
		fi
	fi
	if ! grep -qE '^-*manage-cgroups([ =]|$)' "$RUNC_CONF" 2>/dev/null; then
		conf_add_line "manage-cgroups=ignore" '^-*manage-cgroups([ =]|$)'
		added+=("manage-cgroups=ignore")
	fi
	if [ ${#added[@]} -eq 0 ] || try_criu "with ${added[*]},"; then
		return
	fi
	local line
	for line in "${added[@]}"; do
		sed -i "/^${line}\$/d" "$RUNC_CONF"
	done
	log "removed '${added[*]}' from $RUNC_CONF: the probe failed with them (not tried again with this CRIU)"
	stamp_for "$CRIU_PATH" >"$refused"
	try_criu "again without them," || die "criu at $CRIU_PATH no longer passes the probe; see $PROBE_LOG"
}

# ensure_kdat_cache: every CRIU run (runc starts two per dump and per restore)
# probes the kernel's features, about 40 ms and three execs of iptables,
# unless it finds the cache it writes to /run/criu.kdat; it writes it only on
# a tmpfs (the cache must not outlive a boot), and /run is not one on these
# machines. The cache is made here by a `criu check` in a private mount
# namespace whose /run is a tmpfs, kept on a small tmpfs of its own, and
# bind-mounted onto /run/criu.kdat: /run keeps its contents, and a reboot
# takes the cache away with the mounts. Made again when the CRIU binary
# changes (the cache is only valid for the build that wrote it).
ensure_kdat_cache() {
	local sum
	if [ "$(stat -f -c %T /run 2>/dev/null)" = tmpfs ]; then
		return # CRIU keeps its cache there itself
	fi
	if ! grep -qa "$KDAT_FILE" "$CRIU_PATH"; then
		log "criu at $CRIU_PATH keeps its kernel-feature cache elsewhere than $KDAT_FILE: not cached"
		return
	fi
	sum=$(sha256sum "$CRIU_PATH" | cut -d' ' -f1)
	if mountpoint -q "$KDAT_FILE" && [ "$(cat "$KDAT_DIR/criu.sha256" 2>/dev/null)" = "$sum" ]; then
		return
	fi
	mkdir -p "$KDAT_DIR"
	if ! mountpoint -q "$KDAT_DIR"; then
		mount -t tmpfs -o size=1m,mode=0700 faas-criu-kdat "$KDAT_DIR"
	fi
	if ! unshare -m --propagation private sh -c \
		'mount -t tmpfs -o size=1m tmpfs /run && "$1" check >/dev/null 2>&1; cat /run/criu.kdat' \
		sh "$CRIU_PATH" >"$KDAT_DIR/criu.kdat.new" 2>/dev/null || [ ! -s "$KDAT_DIR/criu.kdat.new" ]; then
		rm -f "$KDAT_DIR/criu.kdat.new"
		log "criu check wrote no kernel-feature cache: CRIU probes the kernel on every run"
		return
	fi
	mv -f "$KDAT_DIR/criu.kdat.new" "$KDAT_DIR/criu.kdat"
	echo "$sum" >"$KDAT_DIR/criu.sha256"
	# A bind mount holds the file it was made from: replace it, not the file.
	while mountpoint -q "$KDAT_FILE"; do umount "$KDAT_FILE"; done
	[ -e "$KDAT_FILE" ] || : >"$KDAT_FILE"
	mount --bind "$KDAT_DIR/criu.kdat" "$KDAT_FILE"
	log "CRIU's kernel-feature cache kept at $KDAT_FILE (bind-mounted from the tmpfs $KDAT_DIR)"
}

# ---------------------------------------------------------------- criu probe

criu_version() {
	local bin=$1
	"$bin" --version 2>/dev/null | sed -n 's/^Version: *//p' | head -n 1 || true
}

# stamp_for CRIU_PATH: what the stamp must contain for this criu, kernel and runc.
stamp_for() {
	local runc_line
	runc_line=$(runc --version 2>/dev/null | head -n 1 || true)
	printf 'criu=%s\nversion=%s\nsha256=%s\nkernel=%s\nrunc=%s\n' \
		"$1" "$(criu_version "$1")" "$(sha256sum "$1" | cut -d' ' -f1)" "$(uname -r)" "$runc_line"
}

stamp_matches() {
	local criu=$1
	[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_for "$criu")" ]
}

write_stamp() {
	stamp_for "$1" >"$STAMP.tmp"
	mv -f "$STAMP.tmp" "$STAMP"
}

# build_probe_image: compile scripts/criu-probe statically, in its own module
# so the project's go.mod (Go version, dependencies) plays no part, and
# package it in a FROM scratch image.
build_probe_image() {
	[ -z "$PROBE_IMAGE_BUILT" ] || return 0
	local src=$SCRIPT_DIR/criu-probe
	[ -f "$src/main.go" ] || die "missing $src/main.go"
	WORK_DIR=${WORK_DIR:-$(mktemp -d /tmp/faas-criu-setup.XXXXXX)}
	mkdir -p "$WORK_DIR/probe"
	cp "$src/main.go" "$WORK_DIR/probe/"
	printf 'module criu-probe\n\ngo 1.19\n' >"$WORK_DIR/probe/go.mod"
	if [ -f "$src/Dockerfile" ]; then
		cp "$src/Dockerfile" "$WORK_DIR/probe/"
	else
		printf 'FROM scratch\nCOPY criu-probe /criu-probe\nENTRYPOINT ["/criu-probe"]\n' >"$WORK_DIR/probe/Dockerfile"
	fi
	log "building the CRIU probe"
	(
		cd "$WORK_DIR/probe"
		CGO_ENABLED=0 GO111MODULE=on GOWORK=off GOFLAGS='' GOTOOLCHAIN=local \
			go build -trimpath -ldflags=-s -o criu-probe .
	) >>"$PROBE_LOG" 2>&1 || {
		tail -n 15 "$PROBE_LOG" >&2
		die "building the CRIU probe (go build) failed; see $PROBE_LOG"
	}
	PROBE_BIN=$WORK_DIR/probe/criu-probe
	PROBE_IMAGE_BUILT=1 # from here on, cleanup removes the image
	# The legacy builder needs neither buildx nor a registry for FROM scratch.
	DOCKER_BUILDKIT=0 docker build -q -t "$PROBE_IMAGE" "$WORK_DIR/probe" >>"$PROBE_LOG" 2>&1 || {
		tail -n 15 "$PROBE_LOG" >&2
		die "docker build of the CRIU probe image failed; see $PROBE_LOG"
	}
}

# remove_probe_container: the probe container, and the copy of its
# checkpoint that containerd 1.6 leaves in its temporary directory on every
# restore (recognised by the container's id in CRIU's cgroup image).
remove_probe_container() {
	local id d
	id=$(docker inspect -f '{{.Id}}' "$PROBE_NAME" 2>/dev/null) || true
	docker rm -f "$PROBE_NAME" >/dev/null 2>&1 || true
	[ -n "$id" ] || return 0
	for d in /tmp/ctrd-checkpoint*; do
		if [ -f "$d/cgroup.img" ] && grep -qF "$id" "$d/cgroup.img"; then
			rm -rf "$d"
		fi
	done
}

probe_ip() {
	docker inspect -f '{{with index .NetworkSettings.Networks "bridge"}}{{.IPAddress}}{{end}}' "$PROBE_NAME" 2>>"$PROBE_LOG"
}

# probe_expect WANT: GET / on the probe container must answer WANT.
probe_expect() {
	local ip got
	ip=$(probe_ip) || true
	if [ -z "$ip" ]; then
		PROBE_WHY="the probe container has no IP on the default bridge"
		return 1
	fi
	if ! got=$("$PROBE_BIN" get "http://$ip:8080/" 2>>"$PROBE_LOG"); then
		PROBE_WHY="GET http://$ip:8080/ failed (expected $1)"
		return 1
	fi
	if [ "$got" != "$1" ]; then
		PROBE_WHY="GET http://$ip:8080/ answered '$got', expected $1 (memory state lost?)"
		return 1
	fi
	echo "GET http://$ip:8080/ -> $got" >>"$PROBE_LOG"
}

# probe_docker WHAT ARGS...: run docker ARGS, output to the probe log; on
# failure keep CRIU's own logs that docker names, before the container
# (and with it the checkpoint directory) is removed.
probe_docker() {
	local what=$1 out f
	shift
	if out=$(docker "$@" 2>&1); then
		echo "$out" >>"$PROBE_LOG"
		return 0
	fi
	{
		echo "docker $* failed:"
		echo "$out"
		for f in $(grep -oE '/[^ "]+\.log' <<<"$out" | sort -u || true); do
			if [ -f "$f" ]; then
				echo "--- tail of $f"
				tail -n 40 "$f"
			fi
		done
	} >>"$PROBE_LOG"
	PROBE_WHY="$what failed: $(grep -m 1 -i error <<<"$out" || tail -n 1 <<<"$out")"
	PROBE_WHY=${PROBE_WHY:0:300}
	return 1
}

# probe_criu LABEL: the real test. Returns 0 when a container checkpointed
# with `docker checkpoint create` and started from the checkpoint still has
# its memory state. The container is always removed.
probe_criu() {
	local label=$1 rc=0
	if [ -z "$PROBE_LOG_STARTED" ]; then
		: >"$PROBE_LOG"
		PROBE_LOG_STARTED=1
	fi
	echo "=== $(date -Is) probe: $label" >>"$PROBE_LOG"
	build_probe_image
	log "probing $label: checkpoint and restore of a container"
	remove_probe_container
	PROBE_WHY=
	probe_steps || rc=$?
	remove_probe_container
	if [ "$rc" -ne 0 ]; then
		echo "probe failed: $PROBE_WHY" >>"$PROBE_LOG"
		log "probe of $label failed: $PROBE_WHY (details in $PROBE_LOG)"
	fi
	return "$rc"
}

probe_steps() {
	local running
	probe_docker "docker run" run -d --network bridge --name "$PROBE_NAME" ${PROBE_RUNTIME:+--runtime "$PROBE_RUNTIME"} "$PROBE_IMAGE" || return 1
	probe_expect 1 || return 1
	probe_expect 2 || return 1
	probe_docker "docker checkpoint create" checkpoint create "$PROBE_NAME" "$PROBE_CP" || return 1
	running=$(docker inspect -f '{{.State.Running}}' "$PROBE_NAME" 2>>"$PROBE_LOG") || true
	if [ "$running" != false ]; then
		PROBE_WHY="the container still runs after the checkpoint (Running=$running)"
		return 1
	fi
	# Docker 20.10 uploads the checkpoint to containerd on restore, and that
	# collides ("content ... already exists") with the blob containerd kept
	# of the dump until its garbage collector runs (moby/moby#42900): a file
	# of our own makes the directory differ, as the provider's does.
	local cpdir
	cpdir=$(docker inspect -f '{{.Id}}' "$PROBE_NAME" 2>>"$PROBE_LOG") || true
	cpdir="$(docker info -f '{{.DockerRootDir}}' 2>>"$PROBE_LOG")/containers/$cpdir/checkpoints/$PROBE_CP"
	if [ ! -d "$cpdir" ]; then
		PROBE_WHY="no checkpoint directory at $cpdir after docker checkpoint create"
		return 1
	fi
	if [ -n "$PROBE_RUNTIME" ] && ! probe_tar_images "$cpdir"; then
		return 1
	fi
	echo "{\"probe\": \"$(date -Ins)\"}" >"$cpdir/faas-criu.json"
	probe_docker "docker start --checkpoint" start --checkpoint "$PROBE_CP" "$PROBE_NAME" || return 1
	probe_expect 3 || return 1
}

# probe_tar_images DIR: the checkpoint's tmpfs images were written by
# faas-criu-tar, not GNU tar: its gzip header says "unknown OS" (0xff, byte
# 9), GNU gzip's says Unix (3). So the runtime's CRIU really found it.
probe_tar_images() {
	local f n=0
	for f in "$1"/tmpfs-dev-*.tar.gz.img; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		if [ "$(od -An -tx1 -j9 -N1 "$f" | tr -d ' ')" != ff ]; then
			PROBE_WHY="$f was not written by faas-criu-tar (CRIU ran GNU tar)"
			return 1
		fi
	done
	if [ "$n" -eq 0 ]; then
		PROBE_WHY="no tmpfs image in $1"
		return 1
	fi
}

# ---------------------------------------------------------------- the faas-criu runtime

CRIU_HELPER_DIR=/usr/local/lib/faas-criu
CRIU_TAR_DIR=$CRIU_HELPER_DIR/bin
CRIU_TAR=$CRIU_TAR_DIR/tar
CRIU_DISPATCH=$CRIU_HELPER_DIR/criu
CRIU_RUNTIME=faas-criu
FAAS_CRIU_INIT_BIN=$CRIU_HELPER_DIR/faas-criu-init

# ensure_criu_runtime: CRIU hard-codes GNU tar for each tmpfs mount of a
# container, at every dump (`tar --create --gzip ...`, which execs gzip) and
# every restore (`tar --extract --gzip ...`): a function container has five
# (/dev, /dev/shm, /sys/fs/cgroup, /proc/acpi, /sys/firmware), 20 execs per
# hibernation and wake, about 40 ms of a quiet restore (bench/tried.md 30,
# 35). faas-criu-tar (cmd/faas-criu-tar) does those two exact runs
# in-process, in GNU tar's archive format, and execs GNU tar for anything
# else. It must be CRIU's "tar" only: CRIU finds tar on its PATH, and a
# daemon.json runtime cannot set an environment, so the engine runtime
# "faas-criu" is runc given as its CRIU a two-line sh script that puts
# $CRIU_TAR_DIR first on PATH and execs the real CRIU (same runc.conf). The
# provider creates function containers with the runtime when the engine
# lists it. Built on every run, registered in daemon.json (other keys and
# runtimes kept), then probed (a checkpoint and restore through the
# runtime, whose tmpfs images must be faas-criu-tar's) whenever the entry,
# the program or the script changed. When that probe fails the script
# loses the PATH line: the runtime stays (containers created with it need
# it to start) and is then plain runc and GNU tar; the archives are the same
# either way, so every checkpoint restores under either runtime.
ensure_criu_runtime() {
	local runc rc=0 changed=
	if ! runc=$(command -v runc); then
		log "no runc on PATH: function containers keep the engine's default runtime"
		return
	fi
	mkdir -p "$CRIU_TAR_DIR"
	if (cd "$SCRIPT_DIR/.." && CGO_ENABLED=0 GOFLAGS='' go build -trimpath -ldflags=-s -o "$CRIU_TAR.new" ./cmd/faas-criu-tar) >>"$PROBE_LOG" 2>&1; then
		cmp -s "$CRIU_TAR.new" "$CRIU_TAR" || changed=1
		mv "$CRIU_TAR.new" "$CRIU_TAR"
	elif [ ! -x "$CRIU_TAR" ]; then
		log "could not build faas-criu-tar (see $PROBE_LOG): function containers keep the default runtime"
		return
	fi
	write_criu_dispatch fast && changed=1
	runtime_entry "$runc" || rc=$?
	case $rc in
	0) ;; # registered as it should be, by an earlier run
	10)
		log "registered the engine runtime $CRIU_RUNTIME in $DAEMON_JSON: $runc --criu $CRIU_DISPATCH"
		reload_runtimes
		changed=1
		;;
	*) die "could not update $DAEMON_JSON: fix it to be a valid JSON object and run again" ;;
	esac
	[ -n "$changed" ] || return 0
	PROBE_RUNTIME=$CRIU_RUNTIME
	if ! probe_criu "the $CRIU_RUNTIME runtime (faas-criu-tar)"; then
		write_criu_dispatch plain || true
		log "the $CRIU_RUNTIME runtime's CRIU runs GNU tar again: the probe failed with faas-criu-tar (details in $PROBE_LOG)"
	fi
	PROBE_RUNTIME=
}

# ensure_init: faas-criu-init (cmd/faas-criu-init), the first process of a
# function container created for in-place hibernation (label
# com.openfaas.criu.in-place; bench/tried.md 47): the provider binds it into
# such containers from $FAAS_CRIU_INIT_BIN (its FAAS_CRIU_INIT default).
# Static, built on every run and replaced only when it changed (a running
# container keeps the file it started with: mv, never a rewrite in place).
# Without it the provider only reports in-place hibernation unavailable.
ensure_init() {
	mkdir -p "$CRIU_HELPER_DIR"
	if (cd "$SCRIPT_DIR/.." && CGO_ENABLED=0 GOFLAGS='' go build -trimpath -ldflags=-s -o "$FAAS_CRIU_INIT_BIN.new" ./cmd/faas-criu-init) >>"$PROBE_LOG" 2>&1; then
		if cmp -s "$FAAS_CRIU_INIT_BIN.new" "$FAAS_CRIU_INIT_BIN"; then
			rm -f "$FAAS_CRIU_INIT_BIN.new"
		else
			mv "$FAAS_CRIU_INIT_BIN.new" "$FAAS_CRIU_INIT_BIN"
			log "installed faas-criu-init at $FAAS_CRIU_INIT_BIN"
		fi
	elif [ ! -x "$FAAS_CRIU_INIT_BIN" ]; then
		rm -f "$FAAS_CRIU_INIT_BIN.new"
		log "could not build faas-criu-init (see $PROBE_LOG): in-place hibernation stays unavailable"
	fi
}

# write_criu_dispatch fast|plain: runc's CRIU in the faas-criu runtime, with
# (fast) or without (plain) faas-criu-tar first on CRIU's PATH. Exit 0 when
# the script changed.
write_criu_dispatch() {
	local path_line=
	[ "$1" = fast ] && path_line="PATH=$CRIU_TAR_DIR:\$PATH "
	printf '#!/bin/sh\n# runc'"'"'s CRIU in the %s runtime (scripts/setup.sh)\n%sexec %s "$@"\n' \
		"$CRIU_RUNTIME" "$path_line" "$CRIU_PATH" >"$CRIU_DISPATCH.new"
	chmod 755 "$CRIU_DISPATCH.new"
	if cmp -s "$CRIU_DISPATCH.new" "$CRIU_DISPATCH"; then
		rm -f "$CRIU_DISPATCH.new"
		return 1
	fi
	mv "$CRIU_DISPATCH.new" "$CRIU_DISPATCH"
}

# reload_runtimes: dockerd rereads its runtimes on SIGHUP.
reload_runtimes() {
	reload_docker
	for _ in $(seq 1 40); do
		docker_answers && return
		sleep 0.25
	done
}

# runtime_entry RUNC: daemon.json's runtimes entry for CRIU_RUNTIME, added
# (never removed: containers created with it need it to start). Exit 0:
# nothing to change; 10: written.
runtime_entry() {
	daemon_json_python "$CRIU_RUNTIME" "$1" "$CRIU_DISPATCH" <<'EOF'
name, runc, criu = sys.argv[2:]
cfg = load(path)
if not isinstance(cfg, dict) or not isinstance(cfg.get("runtimes", {}), dict):
    sys.stderr.write("setup: %s is not a JSON object with an object for runtimes\n" % path)
    sys.exit(2)
rts = cfg.setdefault("runtimes", {})
want = {"path": runc, "runtimeArgs": ["--criu", criu]}
if rts.get(name) == want:
    sys.exit(0)
rts[name] = want
save(path, cfg)
sys.exit(10)
EOF
}

# ---------------------------------------------------------------- criu candidates

# try_criu LABEL: probe the criu on PATH; on success record the stamp and
# set CRIU_PATH.
try_criu() {
	local criu
	hash -r
	criu=$(command -v criu) || return 1
	probe_criu "$1 $criu (criu $(criu_version "$criu"))" || return 1
	write_stamp "$criu"
	CRIU_PATH=$criu
	log "criu $(criu_version "$criu") at $criu passed the probe; recorded in $STAMP"
}

# A failed local criu would shadow the packaged /usr/sbin/criu for runc.
move_aside_failed_local_criu() {
	local criu
	criu=$(command -v criu) || return 0
	case $criu in
	/usr/local/sbin/* | /usr/local/bin/*)
		mv -f "$criu" "$criu.faas-criu-failed"
		log "moved the failing $criu aside to $criu.faas-criu-failed"
		;;
	esac
}

packaged_criu_installed() {
	[ "$(dpkg-query -W -f '${Status}' criu 2>/dev/null || true)" = "install ok installed" ]
}

# debian_mirror: the first configured URI serving this Debian release's main
# suite (e.g. bookworm main); a proxy or local mirror thus keeps working.
debian_mirror() {
	local suite f uri=
	# shellcheck source=/dev/null
	suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true
	suite=${suite:-bookworm}
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		if [ ! -f "$f" ] || [ "$f" = "$SRC_LIST" ]; then continue; fi
		case $f in
		*.sources)
			uri=$(awk -v want="$suite" '
				BEGIN { RS = ""; FS = "\n" }
				{
					types = uris = suites = comps = ""; enabled = "yes"
					for (i = 1; i <= NF; i++) {
						if ($i ~ /^[ \t]*#/) continue
						k = tolower($i); sub(/:.*/, "", k)
						v = $i; sub(/^[^:]*:[ \t]*/, "", v)
						if (k == "types") types = v
						else if (k == "uris") uris = v
						else if (k == "suites") suites = v
						else if (k == "components") comps = v
						else if (k == "enabled") enabled = tolower(v)
					}
					if (enabled == "no" || types !~ /deb/ || (" " comps " ") !~ / main /) next
					n = split(suites, s, /[ \t]+/)
					for (j = 1; j <= n; j++) if (s[j] == want) { split(uris, u, /[ \t]+/); print u[1]; exit }
				}' "$f")
			;;
		*)
			uri=$(awk -v want="$suite" '
				/^[ \t]*deb(-src)?[ \t]/ {
					gsub(/\[[^]]*\]/, "")
					if ($3 != want) next
					for (i = 4; i <= NF; i++) if ($i == "main") { print $2; exit }
				}' "$f")
			;;
		esac
		if [ -n "$uri" ]; then
			echo "${uri%/}"
			return
		fi
	done
	echo "$DEFAULT_MIRROR"
}

ensure_unstable_src_list() {
	local mirror content
	mirror=$(debian_mirror)
	content="# Added by faas-criu scripts/setup.sh: Debian unstable source packages,
# used only to build CRIU from source when no installed CRIU passes its probe.
Types: deb-src
URIs: $mirror
Suites: unstable
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
	if [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
		apt_install debian-archive-keyring
	fi
	if [ ! -f "$SRC_LIST" ] || [ "$(cat "$SRC_LIST")" != "$content" ]; then
		echo "$content" >"$SRC_LIST"
		log "wrote $SRC_LIST (mirror $mirror)"
		APT_UPDATED=
	fi
}

# verify_orig_tarball DSC: set ORIG to the orig tarball named in the .dsc's
# Checksums-Sha256 section, after checking its sha256.
verify_orig_tarball() {
	local dsc=$1 dir sum name
	dir=$(dirname "$dsc")
	read -r sum name < <(awk '
		/^Checksums-Sha256:/ { in_sums = 1; next }
		in_sums && /^ / { if ($3 ~ /\.orig\.tar\./) { print $1, $3; exit } next }
		{ in_sums = 0 }' "$dsc") || true
	[ -n "${name:-}" ] || die "no orig tarball listed in the Checksums-Sha256 section of $dsc"
	[ -f "$dir/$name" ] || die "apt-get source did not download $name; see $BUILD_LOG"
	[ "$(sha256sum "$dir/$name" | cut -d' ' -f1)" = "$sum" ] ||
		die "sha256 of $dir/$name does not match $dsc; delete $CRIU_SRC_DIR and run again"
	ORIG=$dir/$name
}

build_criu_from_source() {
	local dsc build
	log "building CRIU from Debian unstable's source (log: $BUILD_LOG)"
	ensure_unstable_src_list
	# Fresh lists are needed for the unstable Sources index: once per run,
	# again if the source list was just written.
	if [ -z "$APT_UPDATED" ]; then apt_update; fi
	apt_install build-essential pkg-config libprotobuf-c-dev protobuf-c-compiler \
		libprotobuf-dev protobuf-compiler libnl-3-dev libnet1-dev libcap-dev libbsd-dev \
		libnftables-dev libgnutls28-dev uuid-dev python3-protobuf
	mkdir -p "$CRIU_SRC_DIR"
	: >"$BUILD_LOG"
	# Known: the .debian.tar.xz may 404 while the .dsc and the orig tarball
	# arrive; only the orig tarball is needed, and it is verified below.
	(cd "$CRIU_SRC_DIR" && apt-get -o DPkg::Lock::Timeout=60 source --download-only criu/unstable) >>"$BUILD_LOG" 2>&1 || true
	dsc=$(printf '%s\n' "$CRIU_SRC_DIR"/criu_*.dsc | sort -V | tail -n 1)
	if [ -z "$dsc" ]; then
		tail -n 15 "$BUILD_LOG" >&2
		die "apt-get source criu/unstable downloaded no .dsc; see $BUILD_LOG"
	fi
	verify_orig_tarball "$dsc"
	log "verified $(basename "$ORIG") against $(basename "$dsc")"

	build=$CRIU_SRC_DIR/build
	rm -rf "$build"
	mkdir -p "$build"
	tar -xf "$ORIG" -C "$build" --strip-components=1
	log "compiling CRIU (make -j$(nproc) criu)"
	if ! make -C "$build" -j"$(nproc)" criu >>"$BUILD_LOG" 2>&1; then
		tail -n 30 "$BUILD_LOG" >&2
		die "building CRIU failed; full output in $BUILD_LOG"
	fi
	# Install by rename so a criu that is running right now is not disturbed.
	install -m 0755 "$build/criu/criu" "$CRIU_DST.new"
	mv -f "$CRIU_DST.new" "$CRIU_DST"
	hash -r
	log "installed criu $(criu_version "$CRIU_DST") at $CRIU_DST"
}

ensure_criu() {
	local criu first='' tried=''
	if [ "${FAAS_CRIU_FORCE_CRIU_BUILD:-}" = 1 ]; then
		log "FAAS_CRIU_FORCE_CRIU_BUILD=1: skipping the stamp and the installed CRIU"
	else
		if criu=$(command -v criu) && stamp_matches "$criu"; then
			CRIU_PATH=$criu
			log "criu $(criu_version "$criu") at $criu already verified ($STAMP matches): skipping the probe"
			return
		fi
		# (a) a criu already on PATH
		if first=$(command -v criu); then
			tried="installed $first"
			try_criu "installed" && return
			move_aside_failed_local_criu
		fi
		# (b) Debian's packaged criu, unless (a) was just that
		if ! packaged_criu_installed; then
			log "trying Debian's criu package"
			APT_SOFT=1 apt_install criu || true
		fi
		if criu=$(command -v criu) && [ "$criu" != "$first" ]; then
			tried="${tried:+$tried, }Debian's package $criu"
			try_criu "Debian's package" && return
		fi
	fi
	# (c) build from source
	build_criu_from_source
	tried="${tried:+$tried, }built from source $CRIU_DST"
	try_criu "built from source" && return
	die "no working CRIU: tried $tried; none could checkpoint and restore a container." \
		"Logs: $PROBE_LOG, $BUILD_LOG, $APT_LOG, $DOCKERD_LOG (if setup started dockerd)"
}

# ---------------------------------------------------------------- main

main() {
	check_prereqs
	ensure_rcu_expedited
	ensure_docker_installed
	ensure_engine_config
	ensure_docker_running
	ensure_runc_conf
	ensure_criu
	ensure_restore_options
	ensure_kdat_cache
	ensure_criu_runtime
	ensure_init
	log "ready: docker $DOCKER_VERSION (experimental), criu $(criu_version "$CRIU_PATH") at $CRIU_PATH"
}

# Sourced (scripts/setup_test.go tests its pieces), it only defines them.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi

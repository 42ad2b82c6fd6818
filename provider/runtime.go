package provider

import "slices"

// CRIURuntime is the engine runtime that scripts/setup.sh registers in
// daemon.json for function containers: runc, given as its CRIU a two-line
// sh script that puts setup's faas-criu-tar (cmd/faas-criu-tar) first on
// CRIU's PATH as "tar" and execs CRIU. CRIU hard-codes a GNU `tar --gzip`
// (two execs: tar, then gzip) for each tmpfs mount at every dump and
// restore, and a function container has five (/dev, /dev/shm,
// /sys/fs/cgroup, /proc/acpi, /sys/firmware); faas-criu-tar does those two
// exact runs in-process, in GNU tar's own archive format, and hands any
// other to GNU tar (bench/tried.md 37). A daemon.json runtime cannot set
// an environment, hence the script; only this runtime's CRIU sees the
// program. Everything else is plain runc with the same /etc/criu/runc.conf:
// Docker lists, logs and inspects the container as any other (its
// HostConfig.Runtime names this runtime), and a checkpoint made with
// either runtime restores with the other.
const CRIURuntime = "faas-criu"

// functionRuntime is the runtime function containers are created with:
// CRIURuntime when the engine offers it and CRIU is in use, else the
// engine's default. Sandboxes never checkpoint and keep the default.
// A container keeps the runtime it was created with: the engine must go on
// offering it (setup keeps the entry in daemon.json) for the container to
// start or be restored again.
func (p *Provider) functionRuntime() string {
	if p.criu.Available && slices.Contains(p.engineInfo.Runtimes, CRIURuntime) {
		return CRIURuntime
	}
	return ""
}

package checkpoint

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A container's mounts as /proc/PID/mountinfo shows them on cgroup v1
// (Docker 20.10, cgroupfs driver), and the host's.
const containerMountinfo = `700 600 0:60 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
701 700 0:62 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
702 700 0:63 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
703 700 0:65 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
704 703 0:66 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
705 704 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:12 - cgroup cgroup rw,memory
706 704 0:27 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:9 - cgroup cgroup rw,cpu,cpuacct
707 704 0:25 /docker/abc /sys/fs/cgroup/systemd ro,nosuid,nodev,noexec,relatime master:7 - cgroup cgroup rw,xattr,name=systemd
708 700 8:1 /var/lib/docker/containers/abc/hosts /etc/hosts rw,relatime - ext4 /dev/sda1 rw
709 700 8:1 /srv/with\040space /data rw,relatime - ext4 /dev/sda1 rw`

const hostMountinfo = `25 24 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
26 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
33 25 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
40 1 0:40 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:13 - cgroup2 cgroup2 rw`

func TestParseMountinfo(t *testing.T) {
	ms := parseMountinfo(containerMountinfo + "\nbroken line\n")
	if len(ms) != 10 {
		t.Fatalf("%d mounts, want 10 (the broken line skipped)", len(ms))
	}
	if m := ms[9]; m.point != "/data" || m.root != "/srv/with space" || m.fstype != "ext4" {
		t.Errorf("escaped mount read as %+v", m)
	}
	if m := ms[5]; m.root != "/docker/abc" || m.super != "rw,memory" {
		t.Errorf("cgroup mount read as %+v", m)
	}
}

func TestContainerCgroupMounts(t *testing.T) {
	got := containerCgroupMounts(parseMountinfo(containerMountinfo), parseMountinfo(hostMountinfo))
	want := map[string]string{
		"/sys/fs/cgroup/memory":      "/sys/fs/cgroup/memory/docker/abc",
		"/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/docker/abc",
		"/sys/fs/cgroup/systemd":     "/sys/fs/cgroup/systemd/docker/abc",
	}
	if !maps.Equal(got, want) {
		t.Errorf("cgroup mounts %v, want %v", got, want)
	}
}

func TestHostCgroupMount(t *testing.T) {
	host := parseMountinfo(hostMountinfo)
	for _, tt := range []struct {
		controllers, point string
		ok                 bool
	}{
		{"memory", "/sys/fs/cgroup/memory", true},
		{"cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct", true},
		{"name=systemd", "/sys/fs/cgroup/systemd", true},
		{"", "/sys/fs/cgroup/unified", true}, // cgroup v2
		{"rdma", "", false},                  // not mounted here
	} {
		m, ok := hostCgroupMount(host, tt.controllers)
		if ok != tt.ok || m.point != tt.point {
			t.Errorf("hostCgroupMount(%q) = %q, %v; want %q, %v", tt.controllers, m.point, ok, tt.point, tt.ok)
		}
	}
}

func TestParseCgroup(t *testing.T) {
	got := parseCgroup("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/system.slice/x\n")
	for k, want := range map[string]string{"memory": "/docker/abc", "cpu": "/docker/abc", "cpuacct": "/docker/abc",
		"cpu,cpuacct": "/docker/abc", "name=systemd": "/docker/abc", "": "/system.slice/x"} {
		if got[k] != want {
			t.Errorf("parseCgroup()[%q] = %q, want %q", k, got[k], want)
		}
	}
}

// zombieExit: a zombie's status (initfiles.ZombieStatus, its cases tested
// there; a real one in TestReapRestoredWritesStatusThenReaps), else 1.
func TestZombieExit(t *testing.T) {
	for _, stat := range []string{"9 (fn) Z", ""} {
		if got := zombieExit(stat); got != 1 {
			t.Errorf("zombieExit(%q) = %d, want 1 (no status to read)", stat, got)
		}
	}
}

// ReapRestored on a real child: the status reaches the exit file before
// the child is reaped, and no zombie is left.
func TestReapRestoredWritesStatusThenReaps(t *testing.T) {
	dir := t.TempDir()
	p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 5"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { ReapRestored(p.Pid, 42, dir); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ReapRestored did not return")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, InitExit)); string(b) != "42 5\n" {
		t.Errorf("exit file %q, want %q", b, "42 5\n")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(p.Pid)); err == nil {
		t.Errorf("pid %d still exists (a zombie)", p.Pid)
	}
}

func TestStartTimeAndNSPid(t *testing.T) {
	if StartTime(os.Getpid()) == "" || StartTime(os.Getpid()) != StartTime(os.Getpid()) {
		t.Error("no stable start time for this process")
	}
	if NSPid(os.Getpid()) != os.Getpid() {
		t.Errorf("NSPid of this process (host pid namespace) = %d, want %d", NSPid(os.Getpid()), os.Getpid())
	}
}

// logTail names the container's log and carries its last error lines, not
// the open-files line CRIU logs as an error and goes on after.
func TestLogTail(t *testing.T) {
	log := filepath.Join(t.TempDir(), "restore.log")
	base := errors.New("criu restore failed")
	if err := logTail(base, log); err != base {
		t.Errorf("no log: %v, want the error alone", err)
	}
	lines := "(00.001) Error (criu/util.c:1): Can't setup RLIMIT_NOFILE for self\n" +
		"(00.002) Warn: fine\n(00.003) Error (criu/mount.c:2): no mount\n(00.004) Error (criu/cr-restore.c:3): Restoring FAILED.\n"
	if err := os.WriteFile(log, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "criu restore failed; log " + log + ": (00.003) Error (criu/mount.c:2): no mount | (00.004) Error (criu/cr-restore.c:3): Restoring FAILED."
	if err := logTail(base, log); !errors.Is(err, base) || err.Error() != want {
		t.Errorf("logTail = %q, want %q", err, want)
	}
}

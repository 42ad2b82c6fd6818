// Command wakeab alternates, in one run, two ways to hibernate and wake
// the trivial fixture on a private engine (bench/levers/shell/README.md):
//
//	shell:  the container stays up under the holder; its function process
//	        is dumped and restored by the criu CLI directly (shellcr.sh's
//	        options, built here once so that no docker call is timed);
//	docker: `docker checkpoint create` / `docker start --checkpoint`
//	        through the engine's API (what the provider's old path did).
//
// Each wake is timed from just before the restore starts (criu exec, or
// the API call) to the first byte of GET /count; /count must go up by one
// at every wake. Output: one line per sample, then medians.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	criustats "github.com/checkpoint-restore/go-criu/v7/stats"
	"golang.org/x/sys/unix"
)

var (
	sock     = flag.String("sock", "/var/run/faas-criu-engine-shell.sock", "engine socket")
	shellCts = flag.String("shells", "s1=10.61.251.11", "shell containers (under the holder), NAME=IP[=EXT-TMPFS-DIR],...; with a dir, the container's tmpfs mounts are restored as binds of host dirs there (setup.sh ext-tmpfs)")
	dockerCt = flag.String("docker", "d1", "plain container (Docker's way)")
	dockerIP = flag.String("docker-ip", "10.61.251.21", "its sandbox's IP")
	rounds   = flag.Int("rounds", 10, "wakes of each")
	verbose  = flag.String("v", "-v4", "criu log level (runc uses 4)")
	netLock  = flag.String("network-lock", "", "criu --network-lock for the shell way (iptables, nftables, skip; \"\": CRIU's default, iptables)")
)

func main() {
	flag.Parse()
	// The restored function's parent is criu, which exits (-d): it is
	// reparented to the nearest subreaper, here this process, which reaps it
	// at once (a zombie keeps its pid in the container's namespace, and the
	// next restore of that pid fails: "Can't fork for 13: File exists").
	check(unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	eng := engine{c: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", *sock)
	}}}}
	var shells []*shell
	for _, spec := range strings.Split(*shellCts, ",") {
		f := strings.Split(spec, "=") // NAME=IP[=EXT-TMPFS-DIR]
		sh, err := newShell(eng, f[0])
		check(err)
		sh.ip = f[1]
		if len(f) > 2 {
			sh.ext = f[2]
		}
		sh.n, err = count(sh.ip)
		check(err)
		shells = append(shells, sh)
	}
	res := map[string][]float64{}
	add := func(k string, v time.Duration) { res[k] = append(res[k], float64(v.Microseconds())/1000) }
	nDocker, err := count(*dockerIP)
	check(err)
	for i := 0; i < *rounds; i++ {
		order := make([]int, len(shells)+1) // -1: docker; the order rotates each round
		for j := range order {
			order[j] = (i+j)%len(order) - 1
		}
		for _, w := range order {
			time.Sleep(300 * time.Millisecond) // let the previous wake's tail end
			if w >= 0 {
				sh := shells[w]
				k := "shell-" + sh.name
				if sh.ext != "" {
					k += "-ext"
				}
				d, err := sh.dump()
				check(err)
				add(k+".dump", d)
				time.Sleep(200 * time.Millisecond)
				cr, first, n, crit, err := sh.wake(sh.ip)
				check(err)
				add(k+".criu_cmd", cr)
				add(k+".first_byte", first)
				add(k+".criu_log", crit)
				fmt.Printf("round %d %s dump %v criu-restore %v (criu log %v) first-byte %v count %d\n", i, k, d, cr, crit, first, n)
				if n != sh.n+1 {
					check(fmt.Errorf("%s count %d after %d: state lost", k, n, sh.n))
				}
				sh.n = n
			} else {
				d, err := eng.checkpoint(*dockerCt, "cp")
				check(err)
				add("docker.checkpoint", d)
				time.Sleep(200 * time.Millisecond)
				t0 := time.Now()
				check(eng.start(*dockerCt, "cp"))
				st := time.Since(t0)
				n, at, err := countAt(*dockerIP)
				check(err)
				first := at.Sub(t0)
				check(eng.deleteCheckpoint(*dockerCt, "cp"))
				add("docker.start_call", st)
				add("docker.first_byte", first)
				fmt.Printf("round %d docker checkpoint %v start %v first-byte %v count %d\n", i, d, st, first, n)
				if n != nDocker+1 {
					check(fmt.Errorf("docker count %d after %d: state lost", n, nDocker))
				}
				nDocker = n
			}
		}
	}
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := slices.Clone(res[k])
		slices.Sort(v)
		fmt.Printf("%-20s n=%d median %.1f ms  min %.1f  p25 %.1f  p75 %.1f  max %.1f\n", k, len(v), med(v), v[0], v[len(v)/4], v[len(v)*3/4], v[len(v)-1])
	}
}

func med(v []float64) float64 {
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "wakeab:", err)
		os.Exit(1)
	}
}

// count reads /count, retrying while the connection is refused or times
// out (the restored socket may not listen yet), and returns its value.
func count(ip string) (int, error) {
	n, _, err := countAt(ip)
	return n, err
}

// countAt is count, with the time its answer's first byte came.
func countAt(ip string) (int, time.Time, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ip+":8080", 20*time.Millisecond)
		if err == nil {
			fmt.Fprintf(c, "GET /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			first := make([]byte, 1)
			if _, err := io.ReadFull(c, first); err != nil {
				c.Close()
				return 0, time.Time{}, err
			}
			at := time.Now()
			rest, err := io.ReadAll(c)
			c.Close()
			if err != nil {
				return 0, at, err
			}
			b := append(first, rest...)
			s := string(b)
			body := strings.TrimSpace(s[strings.Index(s, "\r\n\r\n")+4:])
			n, err := strconv.Atoi(body)
			return n, at, err
		}
		if time.Now().After(deadline) {
			return 0, time.Time{}, fmt.Errorf("GET %s/count: %w", ip, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// shell holds what a dump and a restore of one holder container need,
// read from the engine once.
type shell struct {
	name, id, root, dir, img string
	ip, ext                  string // its address; host dir of its tmpfs stand-ins ("": CRIU tars them)
	n                        int    // its last count
	holder                   int
	cdir                     string // the sandbox's container dir (hosts, hostname, resolv.conf)
	pidIno, netIno           string
}

var cgs = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd"}

func newShell(eng engine, name string) (*shell, error) {
	var ct struct {
		ID          string
		State       struct{ Pid int }
		GraphDriver struct{ Data map[string]string }
		HostConfig  struct{ NetworkMode string }
	}
	if err := eng.get("/containers/"+name+"/json", &ct); err != nil {
		return nil, err
	}
	var sb struct{ ResolvConfPath string }
	if err := eng.get("/containers/"+strings.TrimPrefix(ct.HostConfig.NetworkMode, "container:")+"/json", &sb); err != nil {
		return nil, err
	}
	s := &shell{name: name, id: ct.ID, root: ct.GraphDriver.Data["MergedDir"], holder: ct.State.Pid,
		dir: "/run/faas-criu-shell/" + name, img: "/tmp/shell/img/" + name, cdir: filepath.Dir(sb.ResolvConfPath)}
	for _, p := range []*string{&s.pidIno, &s.netIno} {
		ns := map[*string]string{&s.pidIno: "pid", &s.netIno: "net"}[p]
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", s.holder, ns))
		if err != nil {
			return nil, err
		}
		*p = strings.Trim(l[len(ns)+1:], "[]")
	}
	return s, nil
}

var tmpfsMounts = []string{"/dev", "/dev/shm", "/sys/fs/cgroup", "/proc/acpi", "/sys/firmware"}

func (s *shell) dump() (time.Duration, error) {
	fn, err := s.function()
	if err != nil {
		return 0, err
	}
	nspid, err := nsPid(fn)
	if err != nil {
		return 0, err
	}
	os.RemoveAll(s.img)
	if err := os.MkdirAll(s.img, 0o700); err != nil {
		return 0, err
	}
	args := []string{"dump", "-t", fn, "-D", s.img, "-o", "dump.log", *verbose, "--tcp-established",
		"--network-lock", lockMode(),
		"--external", "pid[" + s.pidIno + "]:pidns", "--external", "net[" + s.netIno + "]:netns"}
	for _, m := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/.faas-criu"} {
		args = append(args, "--external", "mnt["+m+"]:m"+m)
	}
	for _, c := range cgs {
		args = append(args, "--external", "mnt[/sys/fs/cgroup/"+c+"]:cg-"+c)
	}
	if s.ext != "" {
		for _, m := range tmpfsMounts {
			args = append(args, "--external", "mnt["+m+"]:t"+m)
		}
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.holder))
	if err != nil {
		return 0, err
	}
	start := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))[19]
	if err := os.WriteFile(s.dir+"/hibernated", []byte(nspid+" "+start+"\n"), 0o644); err != nil {
		return 0, err
	}
	t0 := time.Now()
	out, err := exec.Command("criu", args...).CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		os.Remove(s.dir + "/hibernated")
		return d, fmt.Errorf("criu dump: %w: %s (see %s/dump.log)", err, out, s.img)
	}
	// Its pid must be free in the container's namespace before a restore:
	// a dumped process whose parent is the host's init stays a zombie until
	// that init reaps it (this machine's init reaps late).
	for t := time.Now(); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat("/proc/" + fn); err != nil {
			break
		}
		if time.Since(t) > 5*time.Second {
			return d, fmt.Errorf("dumped process %s still there after 5s", fn)
		}
	}
	return d, nil
}

// function finds the root of the function's process tree: a process of
// the container's cgroup, not the holder, whose parent is the holder (first
// start) or outside the container (restored: its parent is criu's reaper).
func (s *shell) function() (string, error) {
	b, err := os.ReadFile("/sys/fs/cgroup/pids/docker/" + s.id + "/cgroup.procs")
	if err != nil {
		return "", err
	}
	procs := strings.Fields(string(b))
	for _, p := range procs {
		if p == strconv.Itoa(s.holder) {
			continue
		}
		st, err := os.ReadFile("/proc/" + p + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
		if f[1] == strconv.Itoa(s.holder) || !slices.Contains(procs, f[1]) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no function in container %s (holder %d)", s.name, s.holder)
}

func nsPid(pid string) (string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "NSpid:" {
			return f[len(f)-1], nil
		}
	}
	return "", fmt.Errorf("no NSpid in /proc/%s/status", pid)
}

// wake restores the function and reads /count: criu's command time, time
// to the first byte, the count, and CRIU's own time from its log.
func (s *shell) wake(ip string) (criuCmd, first time.Duration, n int, crit time.Duration, err error) {
	var files []*os.File
	for _, p := range []string{"ns/pid", "ns/net"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/%s", s.holder, p))
		if err != nil {
			return 0, 0, 0, 0, err
		}
		files = append(files, f)
	}
	keys := []string{"pidns", "netns"}
	for _, fd := range []string{"1", "2"} {
		p := fmt.Sprintf("/proc/%d/fd/%s", s.holder, fd)
		l, err := os.Readlink(p)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		files, keys = append(files, f), append(keys, l)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	args := []string{"restore", "-d", "-D", s.img, "-o", "restore.log", *verbose, "--root", s.root,
		"--network-lock", lockMode(),
		"--tcp-established", "--cgroup-root", "/docker/" + s.id,
		// The container's own IPC and UTS namespaces, not copies of them.
		"--join-ns", fmt.Sprintf("ipc:/proc/%d/ns/ipc", s.holder), "--join-ns", fmt.Sprintf("uts:/proc/%d/ns/uts", s.holder),
		"--external", "mnt[m/etc/hosts]:" + s.cdir + "/hosts", "--external", "mnt[m/etc/hostname]:" + s.cdir + "/hostname",
		"--external", "mnt[m/etc/resolv.conf]:" + s.cdir + "/resolv.conf", "--external", "mnt[m/.faas-criu]:" + s.dir}
	for i, k := range keys {
		args = append(args, "--inherit-fd", fmt.Sprintf("fd[%d]:%s", 3+i, k))
	}
	for _, c := range cgs {
		args = append(args, "--external", "mnt[cg-"+c+"]:/sys/fs/cgroup/"+c+"/docker/"+s.id)
	}
	if s.ext != "" {
		for _, m := range tmpfsMounts {
			args = append(args, "--external", "mnt[t"+m+"]:"+s.ext+m)
		}
	}
	cmd := exec.Command("criu", args...)
	cmd.ExtraFiles = files
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	criuCmd = time.Since(t0)
	if err != nil {
		return criuCmd, 0, 0, 0, fmt.Errorf("criu restore: %w: %s (see %s/restore.log)", err, out, s.img)
	}
	// The holder adopts the restored pid (a pidfd), then the marker goes.
	if err := syscall.Kill(s.holder, syscall.SIGUSR1); err != nil {
		return criuCmd, 0, 0, 0, err
	}
	n, at, err := countAt(ip)
	first = at.Sub(t0)
	os.Remove(s.dir + "/hibernated")
	if fn, err := s.function(); err == nil {
		pid, _ := strconv.Atoi(fn)
		go func() { // our child now (subreaper): reap it when it is dumped
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}()
	}
	return criuCmd, first, n, logTime(s.img + "/restore.log"), err
}

func lockMode() string {
	if *netLock == "" {
		return "iptables"
	}
	return *netLock
}

var stamp = regexp.MustCompile(`^\((\d+\.\d+)\)`)

// logTime is the timestamp of CRIU's "Restore finished" line (its own
// time from start to resumed tasks); with no such line, from the stats.
func logTime(path string) time.Duration {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "Restore finished successfully") {
			if m := stamp.FindStringSubmatch(l); m != nil {
				f, _ := strconv.ParseFloat(m[1], 64)
				return time.Duration(f * float64(time.Second))
			}
		}
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return 0
	}
	defer d.Close()
	st, err := criustats.CriuGetRestoreStats(d)
	if err != nil {
		return 0
	}
	return time.Duration(st.GetRestoreTime()) * time.Microsecond
}

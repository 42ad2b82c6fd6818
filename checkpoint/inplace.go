package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// In-place hibernation (bench/tried.md 47): a container created under
// faas-criu-init (cmd/faas-criu-init) stays up while CRIU, driven here over
// its RPC (criu swrk), dumps and restores only the tree of its function
// process. The function lives in the container's namespaces: the pid and
// network namespaces are external (the init keeps them), the ipc and uts
// ones are joined on restore, the files Docker binds in (/etc/hosts,
// /etc/hostname, /etc/resolv.conf, the init's directory, the user's binds)
// and the cgroup mounts are external mounts bound again from the host; the
// container's tmpfs mounts are dumped by CRIU with their content (so
// /dev/shm survives), through faas-criu-tar when setup installed it. The
// stdout/stderr pipes are inherited from the init on restore, so
// `docker logs` goes on.

// InPlaceTree is a container's side of an in-place dump or restore.
type InPlaceTree struct {
	// Init is the host pid of the container's init.
	Init int
	// Binds map each mount point in the container that Docker bound from a
	// host file or directory to its host source.
	Binds map[string]string
	// Root is the container's root file system as the host sees it (the
	// merged overlay), for a restore.
	Root string
	// LogDir is CRIU's work directory, where it writes dump.log and
	// restore.log (not the images directory: a failed restore leaves that
	// as it was).
	LogDir string
}

// inPlaceMeta is what a dump records beside CRIU's images for its restore:
// the pipes the function's fds 1 and 2 were (the init's, shared with the
// engine's log copier), to be replaced by the init's current ones.
type inPlaceMeta struct {
	Pid int `json:"pid"` // the function's pid in the container
	// Tids are the pids of every thread of the tree in the container: a
	// restore needs them free.
	Tids  []int          `json:"tids"`
	Pipes map[int]string `json:"pipes"`
}

const inPlaceMetaFile = "faas-criu-inplace.json"

// CRIUBinary is the criu the in-place dumps and restores run: setup's
// dispatch script (faas-criu-tar first on CRIU's PATH) when it is there,
// else criu from PATH.
func CRIUBinary() string {
	const dispatch = "/usr/local/lib/faas-criu/criu"
	if st, err := os.Stat(dispatch); err == nil && st.Mode()&0o111 != 0 {
		return dispatch
	}
	return "criu"
}

// DumpTree dumps the tree of fn (a host pid) into dir, which it creates,
// and ends it. On failure the tree keeps running (CRIU resumes it) and dir
// is removed.
func DumpTree(ctx context.Context, t InPlaceTree, fn int, dir string) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("in-place dump directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	meta := inPlaceMeta{Pid: NSPid(fn), Pipes: map[int]string{}, Tids: treeTids(fn)}
	for _, fd := range []int{1, 2} {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", fn, fd)); err == nil && strings.HasPrefix(l, "pipe:") {
			meta.Pipes[fd] = l
		}
	}
	b, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(dir, inPlaceMetaFile), b, 0o600); err != nil {
		return fmt.Errorf("in-place dump: %w", err)
	}
	ext, err := dumpExternals(t)
	if err != nil {
		return err
	}
	wd, err := os.Open(t.LogDir)
	if err != nil {
		return fmt.Errorf("in-place dump: CRIU's work directory: %w", err)
	}
	defer wd.Close()
	opts := baseOpts(dir, "dump.log", wd)
	opts.Pid = proto.Int32(int32(fn))
	opts.External = ext
	if _, err := swrk(ctx, rpc.CriuReqType_DUMP, opts, nil, nil); err != nil {
		return fmt.Errorf("criu dump of pid %d: %w", fn, logTail(err, filepath.Join(t.LogDir, "dump.log")))
	}
	return nil
}

// RestoreTree restores dir's tree into the container whose init is t.Init,
// and returns the restored function's host pid. The restored process is
// this process's child (CRIU's restore-sibling): the caller reaps it
// (ReapRestored). dir is left as it was.
func RestoreTree(ctx context.Context, t InPlaceTree, dir string) (int, error) {
	meta, err := readMeta(dir)
	if err != nil {
		return 0, err
	}
	files, inherit, err := restoreFiles(t.Init, meta)
	defer closeAll(files)
	if err != nil {
		return 0, err
	}
	ext, err := restoreExternals(t)
	if err != nil {
		return 0, err
	}
	wd, err := os.Open(t.LogDir)
	if err != nil {
		return 0, fmt.Errorf("in-place restore: CRIU's work directory: %w", err)
	}
	defer wd.Close()
	opts := baseOpts(dir, "restore.log", wd)
	opts.Root = proto.String(t.Root)
	opts.RstSibling = proto.Bool(true)
	opts.InheritFd = inherit
	opts.External = ext
	cg, err := cgroupPaths(t.Init)
	if err != nil {
		return 0, err
	}
	if p, ok := cg["memory"]; ok {
		opts.CgRoot = []*rpc.CgroupRoot{{Path: proto.String(p)}}
	}
	for _, ns := range []string{"ipc", "uts"} {
		opts.JoinNs = append(opts.JoinNs, &rpc.JoinNamespace{Ns: proto.String(ns), NsFile: proto.String(fmt.Sprintf("/proc/%d/ns/%s", t.Init, ns))})
	}
	// Like runc: CRIU itself joins the container's cgroups, so that what it
	// forks is in them whatever runc.conf's manage-cgroups says.
	join := func(pid int) error { return joinCgroups(pid, t.Init) }
	resp, err := swrk(ctx, rpc.CriuReqType_RESTORE, opts, files, join)
	if err != nil {
		reapStrays()
		return 0, fmt.Errorf("criu restore from %s: %w", dir, logTail(err, filepath.Join(t.LogDir, "restore.log")))
	}
	return int(resp.GetRestore().GetPid()), nil
}

// baseOpts are the options of both directions. runc's configuration file
// is read (its work directory, for the logs) but not handed to CRIU, whose
// file options override RPC ones: its network lock would stay in the
// sandbox's network namespace, which outlives the function (CRIU leaves its
// drop-everything nftables table there after a dump, for the restore to
// remove, and after a failed restore), so a hibernation dropped or a
// restore failed would leave the function unreachable; and its
// manage-cgroups=ignore is what this file does anyway (CRIU joins the
// container's cgroups first, as runc makes it).
func baseOpts(dir, log string, wd *os.File) *rpc.CriuOpts {
	o := &rpc.CriuOpts{
		ImagesDirFd: proto.Int32(-1),
		ImagesDir:   proto.String(dir),
		LogLevel:    proto.Int32(4),
		LogFile:     proto.String(log),
		// CRIU opens it as /proc/<its client>/fd/N: this process's fd.
		WorkDirFd:         proto.Int32(int32(wd.Fd())),
		TcpEstablished:    proto.Bool(true),
		NetworkLock:       rpc.CriuNetworkLockMethod_SKIP.Enum(),
		ManageCgroupsMode: rpc.CriuCgMode_IGNORE.Enum(),
	}
	return o
}

func dumpExternals(t InPlaceTree) ([]string, error) {
	ext := []string{}
	for _, ns := range []string{"pid", "net"} {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", t.Init, ns))
		if err != nil {
			return nil, fmt.Errorf("in-place dump: the container's %s namespace: %w", ns, err)
		}
		ino := strings.TrimSuffix(strings.TrimPrefix(l, ns+":["), "]")
		ext = append(ext, fmt.Sprintf("%s[%s]:%sns", ns, ino, ns))
	}
	mounts, err := externalMounts(t)
	if err != nil {
		return nil, err
	}
	for _, m := range slices.Sorted(maps.Keys(mounts)) {
		ext = append(ext, fmt.Sprintf("mnt[%s]:m%s", m, m))
	}
	return ext, nil
}

func restoreExternals(t InPlaceTree) ([]string, error) {
	mounts, err := externalMounts(t)
	if err != nil {
		return nil, err
	}
	ext := []string{}
	for _, m := range slices.Sorted(maps.Keys(mounts)) {
		ext = append(ext, fmt.Sprintf("mnt[m%s]:%s", m, mounts[m]))
	}
	return ext, nil
}

// externalMounts are the binds plus the container's cgroup mounts, each
// with its host path.
func externalMounts(t InPlaceTree) (map[string]string, error) {
	cg, err := cgroupMounts(t.Init)
	if err != nil {
		return nil, err
	}
	for k, v := range t.Binds {
		cg[k] = v
	}
	return cg, nil
}

// restoreFiles opens what the restored tree inherits: the init's pid and
// network namespaces, and its stdout/stderr pipes in place of the dumped
// ones. They become fds 4... of criu swrk (3 is its socket).
func restoreFiles(init int, meta inPlaceMeta) ([]*os.File, []*rpc.InheritFd, error) {
	type inherited struct {
		path, key string
		flag      int
	}
	todo := []inherited{
		{fmt.Sprintf("/proc/%d/ns/pid", init), "pidns", os.O_RDONLY},
		{fmt.Sprintf("/proc/%d/ns/net", init), "netns", os.O_RDONLY},
	}
	seen := map[string]bool{}
	for _, fd := range slices.Sorted(maps.Keys(meta.Pipes)) {
		if key := meta.Pipes[fd]; !seen[key] {
			seen[key] = true
			// Opening /proc/PID/fd/N of a pipe opens the pipe itself.
			todo = append(todo, inherited{fmt.Sprintf("/proc/%d/fd/%d", init, fd), key, os.O_WRONLY})
		}
	}
	var files []*os.File
	var inh []*rpc.InheritFd
	for _, in := range todo {
		f, err := os.OpenFile(in.path, in.flag, 0)
		if err != nil {
			return files, nil, fmt.Errorf("in-place restore: the init's %s: %w", in.key, err)
		}
		files = append(files, f)
		inh = append(inh, &rpc.InheritFd{Key: proto.String(in.key), Fd: proto.Int32(int32(3 + len(files)))})
	}
	return files, inh, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// swrk runs one request on a fresh `criu swrk`: files become its fds 4...;
// started (when not nil) runs once it was started, before the request.
// Like the engine's own dumps, it runs to its end even if ctx ends (only a
// request not yet sent is given up): CRIU killed mid-dump or mid-restore
// could leave the function stopped or half restored.
func swrk(ctx context.Context, typ rpc.CriuReqType, opts *rpc.CriuOpts, files []*os.File, started func(int) error) (*rpc.CriuResp, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("criu socket: %w", err)
	}
	cln, srv := os.NewFile(uintptr(fds[0]), "criu-client"), os.NewFile(uintptr(fds[1]), "criu-server")
	defer cln.Close()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("criu %s not started: %w", typ, err)
	}
	cmd := exec.Command(CRIUBinary(), "swrk", "3")
	cmd.ExtraFiles = append([]*os.File{srv}, files...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Start()
	srv.Close()
	if err != nil {
		return nil, fmt.Errorf("start criu swrk: %w", err)
	}
	resp, err := swrkRequest(cln, cmd.Process.Pid, typ, opts, started)
	cln.Close()
	if werr := cmd.Wait(); werr != nil && err == nil {
		err = fmt.Errorf("criu swrk: %w: %s", werr, strings.TrimSpace(stderr.String()))
	}
	return resp, err
}

func swrkRequest(sk *os.File, pid int, typ rpc.CriuReqType, opts *rpc.CriuOpts, started func(int) error) (*rpc.CriuResp, error) {
	if started != nil {
		if err := started(pid); err != nil {
			return nil, err
		}
	}
	req, err := proto.Marshal(&rpc.CriuReq{Type: &typ, Opts: opts})
	if err != nil {
		return nil, err
	}
	if _, err := sk.Write(req); err != nil {
		return nil, fmt.Errorf("criu request: %w", err)
	}
	buf := make([]byte, 64<<10)
	n, err := sk.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("criu answer: %w", err)
	}
	resp := &rpc.CriuResp{}
	if err := proto.Unmarshal(buf[:n], resp); err != nil {
		return nil, fmt.Errorf("criu answer: %w", err)
	}
	if !resp.GetSuccess() {
		return resp, fmt.Errorf("criu %s failed (errno %d: %s)", typ, resp.GetCrErrno(), resp.GetCrErrmsg())
	}
	return resp, nil
}

// logTail adds the last error lines of CRIU's log (ErrorLines) to err,
// naming the log: each container has its own.
func logTail(err error, log string) error {
	if _, serr := os.Stat(log); serr != nil {
		return err
	}
	return fmt.Errorf("%w; log %s: %s", err, log, strings.Join(ErrorLines(log, 3), " | "))
}

// ErrNoFunction: the container's init has no function process.
var ErrNoFunction = errors.New("the container's init has no function process")

// treeTids are the container pids of every thread of pid and its
// descendants.
func treeTids(pid int) []int {
	var tids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, t := range tasks {
		if n := NSPid(mustAtoi(filepath.Base(t))); n > 0 {
			tids = append(tids, n)
		}
		for _, c := range strings.Fields(readString(t + "/children")) {
			tids = append(tids, treeTids(mustAtoi(c))...)
		}
	}
	return tids
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// PidsTaken returns a pid the dump in dir needs that is in use in the
// container of init (host pid), zombies included, or 0: its restore would
// fail ("File exists"). The container's own /proc (seen through the init's
// root) answers for its pid namespace, threads included.
func PidsTaken(init int, dir string) (int, error) {
	meta, err := readMeta(dir)
	if err != nil {
		return 0, err
	}
	for _, t := range meta.Tids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/proc/%d", init, t)); err == nil {
			return t, nil
		}
	}
	return 0, nil
}

// readMeta reads what a dump in place recorded beside CRIU's images.
func readMeta(dir string) (inPlaceMeta, error) {
	var meta inPlaceMeta
	b, err := os.ReadFile(filepath.Join(dir, inPlaceMetaFile))
	if err == nil {
		err = json.Unmarshal(b, &meta)
	}
	if err != nil {
		return meta, fmt.Errorf("in-place restore: no dump in %s: %w", dir, err)
	}
	return meta, nil
}

// NSPid is a process's pid in its innermost pid namespace (0 if unknown).
func NSPid(pid int) int {
	f := statusFields(pid, "NSpid")
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[len(f)-1])
	return n
}

// statusFields is the fields of the line key of /proc/PID/status (nil
// when the process or the line is not there).
func statusFields(pid int, key string) []string {
	for _, l := range strings.Split(readString(fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.Fields(v)
		}
	}
	return nil
}

// Catches says whether pid handles sig (SigCgt): a signal the init of a pid
// namespace does not handle yet is dropped.
func Catches(pid int, sig syscall.Signal) bool {
	f := statusFields(pid, "SigCgt")
	if len(f) == 0 {
		return false
	}
	mask, err := strconv.ParseUint(f[0], 16, 64)
	return err == nil && mask&(1<<(uint(sig)-1)) != 0
}

func readString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

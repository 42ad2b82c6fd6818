package checkpoint

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"

	criu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
)

// Capabilities is what the provider found out about CRIU at start. It is
// reported in /system/info.
type Capabilities struct {
	Available bool   `json:"available"`
	Version   string `json:"version,omitempty"`
	Path      string `json:"path,omitempty"`
	// Features as CRIU reports them for this kernel.
	MemTrack   bool `json:"memTrack"`
	LazyPages  bool `json:"lazyPages"`
	PidfdStore bool `json:"pidfdStore"`
	// From runc's CRIU configuration file.
	TCPEstablished bool   `json:"tcpEstablished"`
	WorkDir        string `json:"workDir,omitempty"`
	// Problem says why CRIU cannot be used, or what is degraded.
	Problem string `json:"problem,omitempty"`
	// NonRootFunctions is false where CRIU cannot checkpoint functions that
	// run as a non-root user: it needs CAP_SYS_RESOURCE, which this machine's
	// capability bounding set lacks.
	NonRootFunctions bool `json:"nonRootFunctions"`
}

// capSysResource is CAP_SYS_RESOURCE's bit in /proc/PID/status.
const capSysResource = 24

// NonRootHint explains a dump that failed on a non-root function's rlimits.
const NonRootHint = "CRIU could not read the rlimits of a process of another user: it needs CAP_SYS_RESOURCE, which this machine withholds; run the function as root (the go-http template does) to hibernate it here"

// ExplainDumpError adds what to do to a failed dump's error when CRIU's
// text says why: a non-root function's rlimits it could not read.
func ExplainDumpError(err error) error {
	if err != nil && strings.Contains(err.Error(), "Can't get rlimit") {
		return fmt.Errorf("%w; %s", err, NonRootHint)
	}
	return err
}

// boundingHas reports whether the capability bounding set of this process
// (and so of everything started on this machine, the engine included) has
// the capability.
func boundingHas(bit uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			var mask uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &mask); err == nil {
				return mask&(1<<bit) != 0
			}
		}
	}
	return true
}

// StampPath is where scripts/setup.sh records the CRIU that passed its real
// dump-and-restore probe on this host.
const StampPath = "/var/lib/faas-criu/criu-verified"

// Probe asks the installed CRIU for its version and features (through
// go-criu's RPC), and reads runc's CRIU configuration at confPath. When no
// criu can be run here (the provider in a container: runc runs CRIU on the
// host), the host's setup stamp at stampPath vouches for it.
func Probe(confPath, stampPath string) Capabilities {
	c := Capabilities{NonRootFunctions: boundingHas(capSysResource)}
	conf, err := ReadRuncConf(confPath)
	if err != nil {
		c.Problem = fmt.Sprintf("cannot read %s: %v", confPath, err)
	}
	c.TCPEstablished, c.WorkDir = conf.TCPEstablished, conf.WorkDir

	path, err := exec.LookPath("criu")
	if err != nil {
		if st, ok := readStamp(stampPath); ok {
			c.Available, c.Version = true, st["version"]
			c.Path = st["criu"] + " (on the host, verified by setup's dump-and-restore probe)"
			return c
		}
		c.Problem = "criu is not installed (not found on PATH, and no setup stamp at " + stampPath + "); run scripts/setup.sh"
		return c
	}
	c.Path = path
	cr := criu.MakeCriu()
	v, err := cr.GetCriuVersion()
	if err != nil {
		c.Problem = fmt.Sprintf("criu at %s does not answer: %v", path, err)
		return c
	}
	c.Version = fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
	if v < 31100 {
		c.Problem = fmt.Sprintf("criu %s is too old: 3.11 or newer is needed", c.Version)
		return c
	}
	yes := true
	f, err := cr.FeatureCheck(&rpc.CriuFeatures{MemTrack: &yes, LazyPages: &yes, PidfdStore: &yes})
	if err == nil && f != nil {
		c.MemTrack, c.LazyPages, c.PidfdStore = f.GetMemTrack(), f.GetLazyPages(), f.GetPidfdStore()
	}
	c.Available = true
	if !c.TCPEstablished {
		c.Problem = fmt.Sprintf("%s lacks tcp-established: functions holding TCP connections cannot be hibernated", confPath)
	}
	return c
}

// readStamp reads setup's key=value stamp; it counts only for the running
// kernel.
func readStamp(path string) (map[string]string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	st := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			st[k] = v
		}
	}
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil || st["kernel"] != strings.TrimSpace(string(release)) || st["criu"] == "" {
		return nil, false
	}
	return st, true
}

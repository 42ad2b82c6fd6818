package checkpoint

import (
	"fmt"
	"os/exec"

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
}

// Probe asks the installed CRIU for its version and features (through
// go-criu's RPC), and reads runc's CRIU configuration at confPath.
func Probe(confPath string) Capabilities {
	var c Capabilities
	conf, err := ReadRuncConf(confPath)
	if err != nil {
		c.Problem = fmt.Sprintf("cannot read %s: %v", confPath, err)
	}
	c.TCPEstablished, c.WorkDir = conf.TCPEstablished, conf.WorkDir

	path, err := exec.LookPath("criu")
	if err != nil {
		c.Problem = "criu is not installed (not found on PATH); run scripts/setup.sh"
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

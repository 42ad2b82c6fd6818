package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SysKernel is where the kernel's RCU switches are.
const SysKernel = "/sys/kernel"

// RCU is the host's choice of RCU grace periods, which scripts/setup.sh
// sets (FAAS_CRIU_RCU_EXPEDITED, default on): CRIU's nftables network lock
// waits for two grace periods in every restore, about 23 ms of a quiet
// trivial wake when they are normal and 0.1 ms when expedited
// (bench/tried.md 39). Read for the record (the provider's start log, the
// benchmark's machine table), never changed here.
type RCU struct {
	// Expedited and Normal are rcu_expedited and rcu_normal as read ("0",
	// "1"), "" when not read; Err says why not.
	Expedited, Normal string
	Err               error
}

// ReadRCU reads rcu_expedited and rcu_normal in dir (SysKernel on a host).
// A missing rcu_normal is read as its default, 0.
func ReadRCU(dir string) RCU {
	var r RCU
	b, err := os.ReadFile(filepath.Join(dir, "rcu_expedited"))
	if err != nil {
		r.Err = fmt.Errorf("read rcu_expedited: %w", err)
		return r
	}
	r.Expedited = strings.TrimSpace(string(b))
	r.Normal = "0"
	if b, err := os.ReadFile(filepath.Join(dir, "rcu_normal")); err == nil {
		r.Normal = strings.TrimSpace(string(b))
	}
	return r
}

// String says what the kernel does with them: rcu_normal=1 overrides
// rcu_expedited.
func (r RCU) String() string {
	switch {
	case r.Err != nil:
		return "unknown (" + r.Err.Error() + ")"
	case r.Expedited == "1" && r.Normal == "1":
		return "normal (rcu_expedited 1, overridden by rcu_normal 1)"
	case r.Expedited == "1":
		return "expedited (rcu_expedited 1)"
	case r.Expedited == "0":
		return "normal (rcu_expedited 0)"
	}
	return "unknown (rcu_expedited holds " + fmt.Sprintf("%q", r.Expedited) + ")"
}

package main

import (
	"strings"
	"testing"
)

// The machine table says how the host's RCU grace periods were set, since
// every restore waits for two of them.
func TestMachineTableHasRCU(t *testing.T) {
	r := Report{Machine: machine{CRIU: "4.2.1", RCU: "expedited (rcu_expedited 1)"}}
	md := r.Markdown()
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| RCU grace periods (`/sys/kernel/rcu_expedited`) ") {
			if !strings.Contains(l, "| expedited (rcu_expedited 1) ") {
				t.Errorf("RCU line without its value: %q", l)
			}
			return
		}
		if strings.HasPrefix(l, "## ") {
			break // past the machine table
		}
	}
	t.Errorf("no RCU line in the machine table:\n%s", md)
}

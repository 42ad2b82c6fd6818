package main

import (
	"os"
	"path/filepath"
	"time"

	criustats "github.com/checkpoint-restore/go-criu/v7/stats"

	"github.com/faas-criu/faas-criu/checkpoint"
)

// criuRestore is CRIU's own account of one restore (its stats-restore).
type criuRestore struct {
	Restore time.Duration // restore_time: from start to the tasks resumed
	Forking time.Duration // forking_time
	Pages   uint64
}

// criuWorkDir is the work directory runc's CRIU configuration sets, where
// CRIU leaves stats-restore; "" when none is set.
func criuWorkDir() string {
	c, err := checkpoint.ReadRuncConf(checkpoint.RuncConfPath)
	if err != nil {
		return ""
	}
	return c.WorkDir
}

// lastRestore reads CRIU's statistics of the newest restore if it ended
// after since. The work directory is shared by every provider on the
// machine, so the figures are only as good as that check.
func lastRestore(dir string, since time.Time) (criuRestore, bool) {
	if dir == "" {
		return criuRestore{}, false
	}
	fi, err := os.Stat(filepath.Join(dir, criustats.StatsRestore))
	if err != nil || fi.ModTime().Before(since) {
		return criuRestore{}, false
	}
	d, err := os.Open(dir)
	if err != nil {
		return criuRestore{}, false
	}
	defer d.Close()
	s, err := criustats.CriuGetRestoreStats(d)
	if err != nil || s == nil {
		return criuRestore{}, false
	}
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	return criuRestore{Restore: us(s.GetRestoreTime()), Forking: us(s.GetForkingTime()), Pages: s.GetPagesRestored()}, true
}

package policy

import (
	"fmt"
	"strconv"
	"time"

	"github.com/faas-criu/faas-criu/internal/config"
)

// Labels a function sets to choose its policies. The first five are
// OpenFaaS's own; the com.openfaas.criu.* ones are faas-criu's.
const (
	LabelScaleMin     = "com.openfaas.scale.min"
	LabelScaleMax     = "com.openfaas.scale.max"
	LabelScaleFactor  = "com.openfaas.scale.factor"
	LabelScaleZero    = "com.openfaas.scale.zero"
	LabelZeroDuration = "com.openfaas.scale.zero-duration"
	LabelScaleTarget  = "com.openfaas.scale.target"
	// LabelStrategy: checkpoint, pause, pause-then-checkpoint or remove.
	LabelStrategy = "com.openfaas.criu.strategy"
	// LabelPauseAfter: idle time before the pause tier (pause-then-checkpoint).
	LabelPauseAfter = "com.openfaas.criu.pause-after"
	// LabelHibernateInflight: "true" lets memory pressure hibernate the
	// function while it has requests in flight (they complete after restore).
	LabelHibernateInflight = "com.openfaas.criu.hibernate-inflight"
	// LabelBackupInterval: how often the running function is backed up (a
	// Go duration; "0" turns a global default off).
	LabelBackupInterval = "com.openfaas.criu.backup-interval"
	// LabelBackupsKeep: how many backups of each replica are kept.
	LabelBackupsKeep = "com.openfaas.criu.backups-keep"
)

// Sleep strategies.
const (
	Checkpoint          = "checkpoint"
	Pause               = "pause"
	PauseThenCheckpoint = "pause-then-checkpoint"
	// Remove is OpenFaaS CE's scale to zero: replicas are removed, their
	// state is lost and the next request starts one cold.
	Remove = "remove"
)

// ValidStrategy reports whether s names a strategy.
func ValidStrategy(s string) bool {
	return s == Checkpoint || s == Pause || s == PauseThenCheckpoint || s == Remove
}

// Defaults are the provider-wide settings labels override.
type Defaults struct {
	Strategy     string
	ZeroDuration time.Duration // idle time before sleep, for scale.zero functions
	PauseAfter   time.Duration // idle time before the pause tier
	ScaleMax     int
	ScaleFactor  int     // percent of max per step
	ScaleTarget  float64 // requests per second that trigger a step up
	// BackupInterval is how often running functions are backed up (0: not).
	BackupInterval time.Duration
	BackupsKeep    int
}

// Settings are one function's effective policy settings.
type Settings struct {
	Strategy         string
	ScaleZero        bool
	ZeroDuration     time.Duration
	PauseAfter       time.Duration
	Min, Max, Factor int
	Target           float64
	InflightOptIn    bool
	BackupInterval   time.Duration
	BackupsKeep      int
}

// SettingsFor reads a function's labels over the defaults. Malformed values
// are reported and the default is used.
func SettingsFor(labels map[string]string, d Defaults) (Settings, []error) {
	s := Settings{
		Strategy: d.Strategy, ZeroDuration: d.ZeroDuration, PauseAfter: d.PauseAfter,
		Min: 1, Max: d.ScaleMax, Factor: d.ScaleFactor, Target: d.ScaleTarget,
		BackupInterval: d.BackupInterval, BackupsKeep: max(1, d.BackupsKeep),
	}
	var errs []error
	bad := func(k, v string, want string) {
		errs = append(errs, fmt.Errorf("label %s=%q: want %s", k, v, want))
	}
	if v, ok := labels[LabelStrategy]; ok {
		if ValidStrategy(v) {
			s.Strategy = v
		} else {
			bad(LabelStrategy, v, "checkpoint, pause, pause-then-checkpoint or remove")
		}
	}
	// Booleans the OpenFaaS way (true/1/yes, false/0/no, any case): "1" or
	// "TRUE" once read as false, and a function never slept.
	for k, dst := range map[string]*bool{LabelScaleZero: &s.ScaleZero, LabelHibernateInflight: &s.InflightOptIn} {
		if v, ok := labels[k]; ok && v != "" {
			if b, err := config.ParseBool(v); err == nil {
				*dst = b
			} else {
				bad(k, v, "true or false (also 1/0, yes/no)")
			}
		}
	}
	for k, dst := range map[string]*time.Duration{LabelZeroDuration: &s.ZeroDuration, LabelPauseAfter: &s.PauseAfter} {
		if v, ok := labels[k]; ok {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				*dst = d
			} else {
				bad(k, v, "a positive Go duration such as 30s or 15m")
			}
		}
	}
	if v, ok := labels[LabelBackupInterval]; ok {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			s.BackupInterval = d
		} else {
			bad(LabelBackupInterval, v, "a Go duration such as 30s or 5m (0 for none)")
		}
	}
	if v, ok := labels[LabelBackupsKeep]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 100 {
			s.BackupsKeep = n
		} else {
			bad(LabelBackupsKeep, v, "a whole number from 1 to 100")
		}
	}
	for k, dst := range map[string]*int{LabelScaleMin: &s.Min, LabelScaleMax: &s.Max, LabelScaleFactor: &s.Factor} {
		if v, ok := labels[k]; ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 1000 {
				*dst = n
			} else {
				bad(k, v, "a whole number from 0 to 1000")
			}
		}
	}
	if v, ok := labels[LabelScaleTarget]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
			s.Target = f
		} else {
			bad(LabelScaleTarget, v, "a positive number of requests per second")
		}
	}
	if s.Max < s.Min {
		s.Max = s.Min
	}
	return s, errs
}

package policy

import (
	"fmt"
	"strconv"
	"time"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/internal/config"
)

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
	// DeepAfter is how long a function stays hibernated before its sandbox
	// is stopped too (0: never).
	DeepAfter time.Duration
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
	DeepAfter        time.Duration // 0: never deep
}

// ParseDeepAfter reads a com.openfaas.criu.deep-after value: a Go duration,
// or "0" or "never" for a function that never goes deeper than hibernated.
func ParseDeepAfter(v string) (time.Duration, error) {
	if v == "never" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("label %s=%q: want a Go duration such as 10m or 1h (how long hibernated before the sandbox stops too), or 0 or never", api.LabelDeepAfter, v)
	}
	return d, nil
}

// SettingsFor reads a function's labels over the defaults. Malformed values
// are reported and the default is used.
func SettingsFor(labels map[string]string, d Defaults) (Settings, []error) {
	s := Settings{
		Strategy: d.Strategy, ZeroDuration: d.ZeroDuration, PauseAfter: d.PauseAfter,
		Min: 1, Max: d.ScaleMax, Factor: d.ScaleFactor, Target: d.ScaleTarget,
		BackupInterval: d.BackupInterval, BackupsKeep: max(1, d.BackupsKeep),
		DeepAfter: d.DeepAfter,
	}
	var errs []error
	bad := func(k, v string, want string) {
		errs = append(errs, fmt.Errorf("label %s=%q: want %s", k, v, want))
	}
	if v, ok := labels[api.LabelStrategy]; ok {
		if api.ValidStrategy(v) {
			s.Strategy = v
		} else {
			bad(api.LabelStrategy, v, "checkpoint, pause, pause-then-checkpoint or remove")
		}
	}
	// Booleans the OpenFaaS way (true/1/yes, false/0/no, any case): "1" or
	// "TRUE" once read as false, and a function never slept.
	for k, dst := range map[string]*bool{api.LabelScaleZero: &s.ScaleZero, api.LabelHibernateInflight: &s.InflightOptIn} {
		if v, ok := labels[k]; ok && v != "" {
			if b, err := config.ParseBool(v); err == nil {
				*dst = b
			} else {
				bad(k, v, "true or false (also 1/0, yes/no)")
			}
		}
	}
	for k, dst := range map[string]*time.Duration{api.LabelZeroDuration: &s.ZeroDuration, api.LabelPauseAfter: &s.PauseAfter} {
		if v, ok := labels[k]; ok {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				*dst = d
			} else {
				bad(k, v, "a positive Go duration such as 30s or 15m")
			}
		}
	}
	if v, ok := labels[api.LabelBackupInterval]; ok {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			s.BackupInterval = d
		} else {
			bad(api.LabelBackupInterval, v, "a Go duration such as 30s or 5m (0 for none)")
		}
	}
	if v, ok := labels[api.LabelDeepAfter]; ok {
		if d, err := ParseDeepAfter(v); err == nil {
			s.DeepAfter = d
		} else {
			errs = append(errs, err)
		}
	}
	if v, ok := labels[api.LabelBackupsKeep]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 100 {
			s.BackupsKeep = n
		} else {
			bad(api.LabelBackupsKeep, v, "a whole number from 1 to 100")
		}
	}
	for k, dst := range map[string]*int{api.LabelScaleMin: &s.Min, api.LabelScaleMax: &s.Max, api.LabelScaleFactor: &s.Factor} {
		if v, ok := labels[k]; ok {
			if n, err := api.ParseScale(k, v); err == nil {
				*dst = n
			} else {
				errs = append(errs, err)
			}
		}
	}
	if v, ok := labels[api.LabelScaleTarget]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
			s.Target = f
		} else {
			bad(api.LabelScaleTarget, v, "a positive number of requests per second")
		}
	}
	if s.Max < s.Min {
		s.Max = s.Min
	}
	return s, errs
}

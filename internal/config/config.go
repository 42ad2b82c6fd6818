// Package config is the one place where faas-criu reads its settings: the
// environment variables and flags of `faas-criu serve`, and the quantities
// (memory, CPU) that a deployment or a stack file carries. A value it does
// not understand is an error naming the setting and the value; it is never
// read as "off" or as the default (basic_auth=1 once turned basic auth off).
package config

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ParseBool reads a boolean the OpenFaaS way: true, 1, yes (and on), or
// false, 0, no (and off), in any case.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, errors.New("not a boolean (use true/1/yes or false/0/no)")
}

// ParseDuration reads an OpenFaaS duration: a Go duration ("60s", "1m30s")
// or whole seconds ("60"), as faas-provider's read_timeout and
// write_timeout do. Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > math.MaxInt64/int64(time.Second) {
			return 0, errors.New("not a duration (use e.g. 60s, 5m or whole seconds)")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("not a duration (use e.g. 60s, 5m or whole seconds)")
	}
	return d, nil
}

// ParseInt reads a whole number.
func ParseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("not a whole number")
	}
	return n, nil
}

// A quantity's number: decimal digits with an optional fraction and
// exponent. strconv.ParseFloat alone would also take "0x1p4", "Inf" or
// "1_0", which no Kubernetes quantity is.
var (
	number    = `([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?`
	memoryQty = regexp.MustCompile(`^` + number + `(Ki|Mi|Gi|Ti|k|K|M|G|T)?$`)
	cpuQty    = regexp.MustCompile(`^` + number + `m?$`)
)

// ParseMemory reads a Kubernetes-style quantity ("128Mi", "1G", "64000000")
// as bytes; "" is 0. Deployments, stack files and the provider's own size
// settings all use it, so a stack is never accepted with a quantity the
// provider then refuses.
func ParseMemory(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if !memoryQty.MatchString(s) {
		return 0, fmt.Errorf("invalid memory quantity %q (examples: 128Mi, 1Gi, 500M)", s)
	}
	units := []struct {
		suffix string
		factor float64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	}
	factor := 1.0
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			factor, num = u.factor, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("invalid memory quantity %q (examples: 128Mi, 1Gi, 500M)", s)
	}
	b := v * factor
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("memory quantity %q is too large", s)
	}
	return int64(b), nil
}

// ParseCPU reads a CPU quantity ("500m", "1", "0.25") as nano-CPUs.
func ParseCPU(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if !cpuQty.MatchString(s) {
		return 0, fmt.Errorf("invalid CPU quantity %q (examples: 500m, 1, 0.25)", s)
	}
	scale := 1e9
	num := s
	if strings.HasSuffix(num, "m") {
		scale, num = 1e6, strings.TrimSuffix(num, "m")
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*scale > 1e15 {
		return 0, fmt.Errorf("invalid CPU quantity %q (examples: 500m, 1, 0.25)", s)
	}
	return int64(v * scale), nil
}

// Env reads settings from environment variables. Each getter returns the
// default when the variable is unset or empty, the parsed value when it is
// understood, and otherwise records an error naming the variable and its
// value (returned by Err) and returns the default, so that the caller can
// refuse to start after reading every setting.
type Env struct {
	// Lookup nil means os.LookupEnv.
	Lookup func(string) (string, bool)
	errs   []error
}

func (e *Env) get(name string) (string, bool) {
	lookup := e.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return v, true
}

func (e *Env) fail(name, value string, err error) {
	e.errs = append(e.errs, fmt.Errorf("environment variable %s=%q: %w", name, value, err))
}

// String returns the variable, or def when it is unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// Bool reads a boolean (see ParseBool).
func (e *Env) Bool(name string, def bool) bool { return readEnv(e, name, def, ParseBool) }

// Duration reads a duration (see ParseDuration).
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	return readEnv(e, name, def, ParseDuration)
}

// Int reads a whole number.
func (e *Env) Int(name string, def int) int { return readEnv(e, name, def, ParseInt) }

// readEnv parses the variable, or is def when it is unset or empty; a
// value parse refuses is remembered for Err and reads as def.
func readEnv[T any](e *Env, name string, def T, parse func(string) (T, error)) T {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	x, err := parse(v)
	if err != nil {
		e.fail(name, v, err)
		return def
	}
	return x
}

// Err is every value that was not understood, or nil.
func (e *Env) Err() error {
	return errors.Join(e.errs...)
}

// Bool is a flag.Value for a boolean flag that reads its value with
// ParseBool, so that --basic-auth=yes means what basic_auth=yes means.
// "--name" alone is true, as for the standard library's boolean flags.
type Bool struct{ P *bool }

func (b Bool) String() string {
	if b.P == nil {
		return "false"
	}
	return strconv.FormatBool(*b.P)
}

func (b Bool) Set(s string) error {
	v, err := ParseBool(s)
	if err != nil {
		return err
	}
	*b.P = v
	return nil
}

// IsBoolFlag lets "--name" stand for "--name=true".
func (b Bool) IsBoolFlag() bool { return true }

// Duration is a flag.Value for a duration flag read with ParseDuration, so
// that a flag takes whole seconds as its environment variable does.
type Duration struct{ P *time.Duration }

func (d Duration) String() string {
	if d.P == nil {
		return "0s"
	}
	return d.P.String()
}

func (d Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d.P = v
	return nil
}

// BoolVar defines a boolean flag on fs read with ParseBool.
func BoolVar(fs *flag.FlagSet, p *bool, name string, value bool, usage string) {
	*p = value
	fs.Var(Bool{p}, name, usage)
}

// DurationVar defines a duration flag on fs read with ParseDuration.
func DurationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(Duration{p}, name, usage)
}

// DefaultInitPath is where scripts/setup.sh installs faas-criu-init.
const DefaultInitPath = "/usr/local/lib/faas-criu/faas-criu-init"

// InitPath reads FAAS_CRIU_INIT, faas-criu-init's path for in-place
// hibernation. Set, the file must exist (else an error for Err: the
// operator asked for it); unset, DefaultInitPath counts when it exists, and
// otherwise path is "" with a note saying in-place hibernation is off.
func (e *Env) InitPath() (path, note string) {
	const name = "FAAS_CRIU_INIT"
	if v, ok := e.get(name); ok {
		if st, err := os.Stat(v); err != nil || st.IsDir() {
			e.fail(name, v, errors.New("no faas-criu-init there (scripts/setup.sh installs it at "+DefaultInitPath+")"))
			return "", ""
		}
		return v, ""
	}
	if st, err := os.Stat(DefaultInitPath); err == nil && !st.IsDir() {
		return DefaultInitPath, ""
	}
	return "", "no faas-criu-init at " + DefaultInitPath + " (run scripts/setup.sh): in-place hibernation is unavailable"
}

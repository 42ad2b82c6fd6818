package provider

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseMemory reads a Kubernetes-style quantity ("128Mi", "1G", "64000000")
// as bytes.
func ParseMemory(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
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
	scale := 1e9
	if strings.HasSuffix(s, "m") {
		scale, s = 1e6, strings.TrimSuffix(s, "m")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*scale > 1e15 {
		return 0, fmt.Errorf("invalid CPU quantity %q (examples: 500m, 1, 0.25)", s)
	}
	return int64(v * scale), nil
}

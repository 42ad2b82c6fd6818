package provider

import "github.com/faas-criu/faas-criu/internal/config"

// ParseMemory reads a Kubernetes-style quantity ("128Mi", "1G", "64000000")
// as bytes. The rule lives in package config, shared with stack files.
func ParseMemory(s string) (int64, error) { return config.ParseMemory(s) }

// ParseCPU reads a CPU quantity ("500m", "1", "0.25") as nano-CPUs (package
// config's rule, shared with stack files).
func ParseCPU(s string) (int64, error) { return config.ParseCPU(s) }

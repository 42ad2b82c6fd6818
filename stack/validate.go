package stack

import (
	"fmt"
	"regexp"
	"strings"
)

// These checks mirror the provider's (provider/validate.go and
// provider/resources.go), so that a stack the provider would refuse is
// refused whole before anything is deployed. They are repeated here so the
// stack reader stays independent of the Docker-backed provider package.
var (
	// OpenFaaS function and namespace names are DNS-1123 labels.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// Secret names become file names.
	secretName = regexp.MustCompile(`^[a-zA-Z0-9][-_.a-zA-Z0-9]*$`)
	envName    = regexp.MustCompile(`^[^=\x00]+$`)
	number     = `([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?`
	memoryQty  = regexp.MustCompile(`^` + number + `(Ki|Mi|Gi|Ti|k|K|M|G|T)?$`)
	cpuQty     = regexp.MustCompile(`^` + number + `m?$`)
)

func checkName(name string) error {
	if len(name) > 63 || !dnsLabel.MatchString(name) {
		return fmt.Errorf("invalid function name %q: use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit", name)
	}
	return nil
}

func checkNamespace(ns string) error {
	if len(ns) > 63 || !dnsLabel.MatchString(ns) {
		return fmt.Errorf("invalid namespace %q: use lower-case letters, digits and '-'", ns)
	}
	return nil
}

func checkSecretName(name string) error {
	if len(name) > 253 || !secretName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("invalid secret name %q: use letters, digits, '-', '_' and '.', no path separators or \"..\"", name)
	}
	return nil
}

func checkMemory(s string) error {
	if s = strings.TrimSpace(s); s != "" && !memoryQty.MatchString(s) {
		return fmt.Errorf("invalid memory quantity %q (examples: 128Mi, 1Gi, 500M)", s)
	}
	return nil
}

func checkCPU(s string) error {
	if s = strings.TrimSpace(s); s != "" && !cpuQty.MatchString(s) {
		return fmt.Errorf("invalid CPU quantity %q (examples: 500m, 1, 0.25)", s)
	}
	return nil
}

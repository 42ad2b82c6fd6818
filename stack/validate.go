package stack

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/faas-criu/faas-criu/internal/config"
)

// These checks mirror the provider's (provider/validate.go), so that a stack
// the provider would refuse is refused whole before anything is deployed.
// Names are repeated here so the stack reader stays independent of the
// Docker-backed provider package; quantities share package config's rule.
var (
	// OpenFaaS function and namespace names are DNS-1123 labels.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// Secret names become file names.
	secretName = regexp.MustCompile(`^[a-zA-Z0-9][-_.a-zA-Z0-9]*$`)
	envName    = regexp.MustCompile(`^[^=\x00]+$`)
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

// checkMemory and checkCPU use the provider's own rule (package config), so
// a quantity the provider would refuse is never accepted here.
func checkMemory(s string) error {
	_, err := config.ParseMemory(s)
	return err
}

func checkCPU(s string) error {
	_, err := config.ParseCPU(s)
	return err
}

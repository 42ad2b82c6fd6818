package stack

import (
	"fmt"
	"regexp"

	"github.com/distribution/reference"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/internal/config"
)

// Names are checked by package api's rules, the provider's own, so that a
// stack the provider would refuse is refused whole before anything is
// deployed.
var envName = regexp.MustCompile(`^[^=\x00]+$`)

func checkName(name string) error { return api.ValidateName(name) }

func checkNamespace(ns string) error { return api.ValidateNamespace(ns) }

func checkSecretName(name string) error { return api.ValidateSecretName(name) }

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

func checkImage(s string) error {
	if _, err := reference.ParseNormalizedNamed(s); err != nil {
		return fmt.Errorf("invalid image reference %q: %v", s, err)
	}
	return nil
}

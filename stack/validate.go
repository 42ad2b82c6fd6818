package stack

import (
	"fmt"
	"regexp"

	"github.com/distribution/reference"

	"github.com/faas-criu/faas-criu/internal/config"
)

// Names are checked by package api's rules (api.ValidateName and the
// rest), the provider's own, so that a stack the provider would refuse is
// refused whole before anything is deployed. envName is an environment
// variable's name.
var envName = regexp.MustCompile(`^[^=\x00]+$`)

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

package provider

import (
	"regexp"
	"strings"
)

// DefaultNamespace is where functions live unless a request names another.
const DefaultNamespace = "openfaas-fn"

// OpenFaaS function and namespace names are DNS-1123 labels.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Secret names become file names: letters, digits, '-', '_' and '.', never
// "." or "..", no path separators.
var secretName = regexp.MustCompile(`^[a-zA-Z0-9][-_.a-zA-Z0-9]*$`)

// ValidateName checks a function name.
func ValidateName(name string) error {
	if name == "" {
		return errorf(ErrInvalid, "function name is required (field \"service\")")
	}
	if len(name) > 63 || !dnsLabel.MatchString(name) {
		return errorf(ErrInvalid, "invalid function name %q: use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit", name)
	}
	return nil
}

// ValidateSecretName checks a secret name before it becomes a file name.
func ValidateSecretName(name string) error {
	if name == "" {
		return errorf(ErrInvalid, "secret name is required")
	}
	if len(name) > 253 || !secretName.MatchString(name) || strings.Contains(name, "..") {
		return errorf(ErrInvalid, "invalid secret name %q: use letters, digits, '-', '_' and '.', no path separators or \"..\"", name)
	}
	return nil
}

// validateNamespaceName checks the form of a namespace name.
func validateNamespaceName(ns string) error {
	if len(ns) > 63 || !dnsLabel.MatchString(ns) {
		return errorf(ErrInvalid, "invalid namespace %q", ns)
	}
	return nil
}

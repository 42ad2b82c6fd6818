package api

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// DefaultNamespace is where functions live unless a request names another.
const DefaultNamespace = "openfaas-fn"

// OpenFaaS function and namespace names are DNS-1123 labels.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Secret names become file names: letters, digits, '-', '_' and '.', never
// "." or "..", no path separators.
var secretName = regexp.MustCompile(`^[a-zA-Z0-9][-_.a-zA-Z0-9]*$`)

// ValidateName checks a function name (ErrInvalid when it is not one).
func ValidateName(name string) error {
	if name == "" {
		return Errorf(ErrInvalid, "function name is required (field \"service\")")
	}
	if len(name) > 63 || !dnsLabel.MatchString(name) {
		return Errorf(ErrInvalid, "invalid function name %q: use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit", name)
	}
	return nil
}

// ValidateNamespace checks the form of a namespace name.
func ValidateNamespace(ns string) error {
	if len(ns) > 63 || !dnsLabel.MatchString(ns) {
		return Errorf(ErrInvalid, "invalid namespace %q: use lower-case letters, digits and '-'", ns)
	}
	return nil
}

// ValidateSecretName checks a secret name before it becomes a file name.
func ValidateSecretName(name string) error {
	if name == "" {
		return Errorf(ErrInvalid, "secret name is required")
	}
	if len(name) > 253 || !secretName.MatchString(name) || strings.Contains(name, "..") {
		return Errorf(ErrInvalid, "invalid secret name %q: use letters, digits, '-', '_' and '.', no path separators or \"..\"", name)
	}
	return nil
}

// ParseURL reads the URL of a faas-criu or OpenFaaS gateway: it must be
// http(s)://host[:port][/path]. Callers add their own rules (a migration
// target may not carry credentials).
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, Errorf(ErrInvalid, "invalid gateway URL %q: expected http(s)://host[:port]", raw)
	}
	return u, nil
}

// ParseScale reads com.openfaas.scale.min, .max or .factor (label names
// which): a whole number from 0 to 1000.
func ParseScale(label, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1000 {
		return 0, Errorf(ErrInvalid, "label %s=%q: want a whole number from 0 to 1000", label, v)
	}
	return n, nil
}

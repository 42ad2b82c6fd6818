package provider

import "github.com/faas-criu/faas-criu/api"

// DefaultNamespace is where functions live unless a request names another.
const DefaultNamespace = api.DefaultNamespace

// ValidateName checks a function name (package api holds the rule).
func ValidateName(name string) error { return api.ValidateName(name) }

// ValidateSecretName checks a secret name before it becomes a file name.
func ValidateSecretName(name string) error { return api.ValidateSecretName(name) }

// validateNamespaceName checks the form of a namespace name.
func validateNamespaceName(ns string) error { return api.ValidateNamespace(ns) }

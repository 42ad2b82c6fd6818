// Package client is how faas-criu's client commands find the provider and
// its credentials, the way faas-cli does, and talk to its API.
package client

import (
	"os"
	"strings"
)

// DefaultURL is the gateway used when nothing names another.
const DefaultURL = "http://127.0.0.1:8080"

// URL picks the gateway: the --gateway flag, then $OPENFAAS_URL, then the
// stack's provider.gateway, then DefaultURL. Trailing slashes are trimmed.
// lookupEnv nil means os.LookupEnv.
func URL(flag, stackGateway string, lookupEnv func(string) (string, bool)) string {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	env, _ := lookupEnv("OPENFAAS_URL")
	for _, u := range []string{flag, env, stackGateway, DefaultURL} {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			return u
		}
	}
	return DefaultURL
}

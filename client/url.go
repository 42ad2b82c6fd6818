// Package client is how faas-criu's client commands find the provider and
// its credentials, the way faas-cli does, and talk to its API.
package client

import (
	"net/url"
	"os"
	"strings"
)

// DefaultURL is the gateway used when nothing names another.
const DefaultURL = "http://127.0.0.1:8080"

// URL picks the gateway in faas-cli's order: the --gateway flag, then the
// stack's provider.gateway, then $OPENFAAS_URL, then DefaultURL. As in
// faas-cli, a flag or stack value equal to the default counts as not given
// (faas-cli cannot tell its flag's default from the same URL typed), so the
// two tools reach the same gateway from the same flags, stack and
// environment. The result is normalised (see Normalize). lookupEnv nil
// means os.LookupEnv.
func URL(flag, stackGateway string, lookupEnv func(string) (string, bool)) string {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	env, _ := lookupEnv("OPENFAAS_URL")
	given := func(u string) bool { return strings.TrimSpace(u) != "" && Normalize(u) != DefaultURL }
	switch {
	case given(flag):
		return Normalize(flag)
	case given(stackGateway):
		return Normalize(stackGateway)
	case strings.TrimSpace(env) != "":
		return Normalize(env)
	}
	return DefaultURL
}

// Normalize reads a gateway URL as faas-cli does: trailing slashes are
// trimmed and a URL without a scheme is http ("127.0.0.1:8080" is
// "http://127.0.0.1:8080"). faas-cli lower-cases the whole URL; only the
// scheme and host are lower-cased here, which reaches the same gateway
// without changing a path.
func Normalize(raw string) string {
	s := strings.TrimRight(strings.TrimSpace(raw), "/")
	if s == "" {
		return ""
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s // the caller's check reports it
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	return strings.TrimRight(u.String(), "/")
}

package cli

import (
	"flag"
	"fmt"
	"net/url"

	gateway "github.com/faas-criu/faas-criu/client"
)

// gatewayClient finds a gateway (flag, then $OPENFAAS_URL, then the default)
// and its credentials the way faas-cli does.
func gatewayClient(flagURL string) (*gateway.Client, error) {
	gw := gateway.URL(flagURL, "", nil)
	return clientFor(gw)
}

// clientFor returns a client for one gateway URL with its credentials.
func clientFor(gw string) (*gateway.Client, error) {
	if u, err := url.Parse(gw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid gateway URL %q: expected http(s)://host[:port]", gw)
	}
	creds, err := gateway.FindCredentials(gw, nil)
	if err != nil {
		return nil, err
	}
	return gateway.NewClient(gw, creds), nil
}

// humanBytes prints a byte count for people.
func humanBytes(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

// gatewayFlags adds --gateway (-g) and --namespace to a client command.
func gatewayFlags(fs *flag.FlagSet) (gw, ns *string) {
	gw = fs.String("gateway", "", "the faas-criu the function is on (default $OPENFAAS_URL, then "+gateway.DefaultURL+")")
	fs.StringVar(gw, "g", "", "same as --gateway")
	ns = fs.String("namespace", "", "the function's namespace")
	return gw, ns
}

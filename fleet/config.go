// Package fleet joins several faas-criu boxes into one: embedded NATS
// servers routed to each other (or an existing NATS cluster) hold, in
// replicated JetStream KV, the boxes (with a heartbeat), the functions as
// deployed and where each one runs. Any box's API then answers for every
// function: a request for a function placed on another box is forwarded to
// it. It is opt-in: without --cluster-listen or --cluster-nats nothing here
// starts, and a box behaves as before.
package fleet

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Config is a box's place in the fleet.
type Config struct {
	// Box is this box's name, unique in the fleet (node.hostname in
	// constraints). Default: the hostname.
	Box string
	// Labels are this box's labels (node.labels.KEY in constraints).
	Labels map[string]string
	// Advertise is the URL other boxes reach this box's API on.
	Advertise string
	// ClusterListen is host:port of this box's embedded NATS server's
	// route listener; Routes are the other boxes' (nats://host:port).
	ClusterListen string
	Routes        []string
	// ClusterAdvertise is host:port the other boxes reach this box's route
	// listener on, when not ClusterListen (NAT, a proxy): it is what the
	// servers tell each other of this one.
	ClusterAdvertise string
	// NATSURL is an existing NATS cluster to use instead of an embedded
	// server.
	NATSURL string
	// Dir is where the embedded server stores its JetStream data
	// (STATE_DIR/fleet/nats).
	Dir string
	// KeyFile holds the 32-byte key secrets are encrypted with in KV
	// (default STATE_DIR/fleet/key); every box needs the same key.
	KeyFile string
	// QueueStore is the file storage the embedded server reserves for
	// the asynchronous calls' stream, beyond the buckets'; MaxPayload
	// its largest message (0: NATS's default). Set by the provider from
	// the queue's bounds.
	QueueStore int64
	MaxPayload int32
	// ObjectStore bounds the object store (each function's newest
	// checkpoint and the images, one replica per server); 0: 4 GiB.
	ObjectStore int64

	labels, routes string
}

// RegisterFlags adds the fleet's serve flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&c.Box, "box-name", envOr("box_name", host), "this box's name in a fleet, unique (node.hostname in constraints) (env box_name)")
	fs.StringVar(&c.labels, "box-labels", envOr("box_labels", ""), "this box's labels in a fleet, k=v,k=v (node.labels.k in constraints) (env box_labels)")
	fs.StringVar(&c.Advertise, "advertise", envOr("advertise", ""), "URL the other boxes of a fleet reach this box's API on (default http://BOX-NAME:PORT) (env advertise)")
	fs.StringVar(&c.ClusterListen, "cluster-listen", envOr("cluster_listen", ""), "join a fleet: host:port of this box's embedded NATS route listener (env cluster_listen)")
	fs.StringVar(&c.ClusterAdvertise, "cluster-advertise", envOr("cluster_advertise", ""), "host:port the other boxes reach this box's route listener on, when not --cluster-listen (NAT, proxy) (env cluster_advertise)")
	fs.StringVar(&c.routes, "cluster-routes", envOr("cluster_routes", ""), "the other boxes' NATS route addresses, nats://host:port,... (env cluster_routes)")
	fs.StringVar(&c.NATSURL, "cluster-nats", envOr("cluster_nats", ""), "join a fleet through an existing NATS cluster with JetStream at this URL instead (env cluster_nats)")
	fs.StringVar(&c.KeyFile, "fleet-key-file", envOr("fleet_key_file", ""), "32-byte key (hex) secrets are encrypted with in the fleet's KV; the same on every box (default STATE_DIR/fleet/key, created if missing) (env fleet_key_file)")
}

// Enabled says whether a fleet was configured.
func (c *Config) Enabled() bool { return c.ClusterListen != "" || c.NATSURL != "" }

// Finish checks the flags once parsed; port is the API's port and state
// the provider's state directory.
func (c *Config) Finish(state string, port int) error {
	if !c.Enabled() {
		if c.routes != "" {
			return fmt.Errorf("fleet: --cluster-routes needs --cluster-listen")
		}
		return nil
	}
	if c.Box == "" {
		return fmt.Errorf("fleet: --box-name is required (no hostname)")
	}
	c.Labels = map[string]string{}
	for _, kv := range strings.Split(c.labels, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("fleet: --box-labels %q: want k=v,k=v", c.labels)
		}
		c.Labels[k] = v
	}
	for _, r := range strings.Split(c.routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			if _, err := url.Parse(r); err != nil {
				return fmt.Errorf("fleet: --cluster-routes %q: %w", r, err)
			}
			c.Routes = append(c.Routes, r)
		}
	}
	if c.Advertise == "" {
		c.Advertise = fmt.Sprintf("http://%s:%d", c.Box, port)
	}
	c.Advertise = strings.TrimRight(c.Advertise, "/")
	c.Dir = state + "/fleet/nats"
	if c.KeyFile == "" {
		c.KeyFile = state + "/fleet/key"
	}
	return nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// DefaultObjectStore is the object store's bound when none is given.
const DefaultObjectStore = 4 << 30

func (c *Config) objectStore() int64 {
	if c.ObjectStore > 0 {
		return c.ObjectStore
	}
	return DefaultObjectStore
}

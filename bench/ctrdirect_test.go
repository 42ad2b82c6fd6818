package main

import "testing"

func TestContainerdConfig(t *testing.T) {
	cases := []struct {
		name, toml, root, addr string
	}{
		{"as dockerd 20.10 writes it", `version = 0
root = "/var/lib/docker/containerd/daemon"
state = "/var/run/docker/containerd/daemon"
disabled_plugins = ["cri"]

[grpc]
  address = "/var/run/docker/containerd/containerd.sock"
  tcp_address = ""

[debug]
  address = "/var/run/docker/containerd/containerd-debug.sock"
`, "/var/lib/docker/containerd/daemon", "/var/run/docker/containerd/containerd.sock"},
		{"no grpc section: the caller falls back", "root = \"/r\"\n[debug]\n  address = \"/d.sock\"\n", "/r", ""},
		{"ttrpc's address is not grpc's", "[ttrpc]\naddress = \"/t.sock\"\n[grpc]\naddress = \"/g.sock\"\n", "", "/g.sock"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, addr := containerdConfig(c.toml)
			if root != c.root || addr != c.addr {
				t.Errorf("got root %q addr %q, want %q %q", root, addr, c.root, c.addr)
			}
		})
	}
}

// The containerd-direct floor's names follow the prefixes, and its
// interface names fit Linux's 15 characters whatever the prefix.
func TestCtrNamesFollowPrefixes(t *testing.T) {
	saved := []*string{&mainNetwork, &densityNetwork, &baselineNetwork, &migrationNetworkA, &migrationNetworkB, &scaleNetwork,
		&mainSubnet, &densitySubnet, &baselineSubnet, &migrationSubnetA, &migrationSubnetB, &scaleSubnet,
		&migrationEngine, &ctrNamespace, &ctrBridge, &ctrVeth, &ctrSubnet}
	old := make([]string, len(saved))
	for i, p := range saved {
		old[i] = *p
	}
	restore := func() {
		for i, p := range saved {
			*p = old[i]
		}
	}
	defer restore()
	cases := []struct {
		net, subnet          string
		ns, bridge, ctSubnet string
	}{
		{defaultNetPrefix, defaultSubnetPrefix, "faas-criu-bench", "fcb-ctrd", "10.77.16.0/24"},
		{"ctrf", "10.84", "faas-criu-bench-ctrf", "ctrf-ctrd", "10.84.16.0/24"},
		{"abcdefghijklmnop", "10.9", "faas-criu-bench-abcdefghijklmnop", "abcdefgh-ctrd", "10.9.16.0/24"},
	}
	for _, c := range cases {
		t.Run(c.net, func(t *testing.T) {
			restore()
			if err := renameNetworks(c.net, c.subnet); err != nil {
				t.Fatal(err)
			}
			if ctrNamespace != c.ns || ctrBridge != c.bridge || ctrSubnet != c.ctSubnet {
				t.Errorf("got %q %q %q, want %q %q %q", ctrNamespace, ctrBridge, ctrSubnet, c.ns, c.bridge, c.ctSubnet)
			}
			for _, name := range []string{ctrBridge, ctrVeth + "99"} {
				if len(name) > 15 {
					t.Errorf("interface name %q is over 15 characters", name)
				}
			}
		})
	}
}

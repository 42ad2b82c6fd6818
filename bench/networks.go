package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// The benchmark's Docker networks are named fcb-* on subnets 10.77.*.*; a
// run beside another (another helper's, on the same machine) renames both,
// so that neither removes the other's networks nor routes into the other's
// bridge: -net-prefix boxmem gives boxmem-bench, boxmem-bench-d, ...;
// -subnet-prefix 10.93 gives 10.93.0.0/24, ...
const (
	defaultNetPrefix    = "fcb"
	defaultSubnetPrefix = "10.77"
)

var (
	netPrefixRE    = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)
	subnetPrefixRE = regexp.MustCompile(`^(10\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9]))$`)
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// renameNetworks applies the prefixes to every network and subnet of the
// benchmark; the defaults leave them as they are.
func renameNetworks(netPrefix, subnetPrefix string) error {
	if !netPrefixRE.MatchString(netPrefix) {
		return fmt.Errorf("-net-prefix %q: want a lowercase name, at most 16 characters", netPrefix)
	}
	if !subnetPrefixRE.MatchString(subnetPrefix) {
		return fmt.Errorf("-subnet-prefix %q: want 10.N (N 0-255)", subnetPrefix)
	}
	for _, n := range []*string{&mainNetwork, &densityNetwork, &baselineNetwork, &migrationNetworkA, &migrationNetworkB, &scaleNetwork} {
		*n = netPrefix + strings.TrimPrefix(*n, defaultNetPrefix)
	}
	for _, s := range []*string{&mainSubnet, &densitySubnet, &baselineSubnet, &migrationSubnetA, &migrationSubnetB, &scaleSubnet} {
		*s = subnetPrefix + strings.TrimPrefix(*s, defaultSubnetPrefix)
	}
	ctrSubnet = subnetPrefix + strings.TrimPrefix(ctrSubnet, defaultSubnetPrefix)
	if netPrefix != defaultNetPrefix {
		migrationEngine = netPrefix
		// Interface names hold 15 characters: "PREFIX-ctrd", "PREFIX-cvN".
		short := netPrefix[:min(len(netPrefix), 8)]
		ctrBridge, ctrVeth = short+"-ctrd", short+"-cv"
		ctrNamespace += "-" + netPrefix
	}
	return nil
}

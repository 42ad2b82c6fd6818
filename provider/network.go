package provider

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"log/slog"
	"net"
	"sync"
)

// ipam hands out fixed addresses on the provider's network. Every replica
// keeps its address for life, across checkpoint and restore, so that a
// connection held open during hibernation finds it again.
type ipam struct {
	mu      sync.Mutex
	subnet  *net.IPNet
	gateway net.IP
	used    map[string]bool
}

func newIPAM(cidr, gateway string) (*ipam, error) {
	_, sn, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("subnet %q: %w", cidr, err)
	}
	if sn.IP.To4() == nil {
		return nil, fmt.Errorf("subnet %q: only IPv4 subnets are supported", cidr)
	}
	if ones, _ := sn.Mask.Size(); ones > 29 {
		return nil, fmt.Errorf("subnet %q is too small", cidr)
	}
	gw := net.ParseIP(gateway)
	if gw == nil {
		gw = nthIP(sn, 1)
	}
	return &ipam{subnet: sn, gateway: gw.To4(), used: map[string]bool{}}, nil
}

func nthIP(sn *net.IPNet, n uint32) net.IP {
	base := binary.BigEndian.Uint32(sn.IP.To4())
	out := make(net.IP, 4)
	binary.BigEndian.PutUint32(out, base+n)
	return out
}

func (a *ipam) size() uint32 {
	ones, bits := a.subnet.Mask.Size()
	return 1 << uint(bits-ones)
}

// allocate returns the lowest free address (not the network, gateway or
// broadcast address).
func (a *ipam) allocate() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := uint32(2); i < a.size()-1; i++ {
		ip := nthIP(a.subnet, i)
		if ip.Equal(a.gateway) || a.used[ip.String()] {
			continue
		}
		a.used[ip.String()] = true
		return ip.String(), nil
	}
	return "", errorf(api.ErrUnavailable, "no free address left in %s", a.subnet)
}

func (a *ipam) reserve(ip string) {
	a.mu.Lock()
	a.used[ip] = true
	a.mu.Unlock()
}

func (a *ipam) release(ip string) {
	a.mu.Lock()
	delete(a.used, ip)
	a.mu.Unlock()
}

// ensureNetwork finds or creates the provider's bridge network. An existing
// network keeps its subnet.
func (p *Provider) ensureNetwork(ctx context.Context) (*ipam, error) {
	nw, err := p.engine.InspectNetwork(ctx, p.cfg.Network)
	if isNotFound(err) {
		a, err := newIPAM(p.cfg.Subnet, "")
		if err != nil {
			return nil, err
		}
		err = p.engine.CreateNetwork(ctx, p.cfg.Network, NetworkInfo{
			Subnet:  a.subnet.String(),
			Gateway: a.gateway.String(),
			Labels:  map[string]string{labelOwner: "faas-criu"},
		})
		if err != nil {
			return nil, fmt.Errorf("create network %s (%s): %w; choose another subnet with --subnet", p.cfg.Network, a.subnet, err)
		}
		slog.Info("network created", "network", p.cfg.Network, "subnet", a.subnet)
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect network %s: %w", p.cfg.Network, err)
	}
	if nw.Subnet == "" {
		return nil, fmt.Errorf("network %s exists without a fixed subnet; remove it (docker network rm %s) and let faas-criu create it", p.cfg.Network, p.cfg.Network)
	}
	a, err := newIPAM(nw.Subnet, nw.Gateway)
	if err != nil {
		return nil, err
	}
	// Addresses in use on the network, whoever uses them, are not handed
	// out again.
	for _, addr := range nw.Addresses {
		if ip, _, err := net.ParseCIDR(addr); err == nil {
			a.reserve(ip.String())
		}
	}
	return a, nil
}

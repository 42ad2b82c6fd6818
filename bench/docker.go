package main

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// benchLabel marks every function the benchmark deploys (function labels
// are copied onto their containers), so that leftovers of an interrupted
// run can be found and removed.
const benchLabel = "io.faas-criu.bench"

// containerOf returns the container of replica 0 of a function of a
// provider, or "" when it has none, and remembers it.
func (b *bench) containerOf(ctx context.Context, p *Provider, name string) (string, error) {
	id, err := containerOf(ctx, b.docker, p, name)
	b.ids.add(id)
	return id, err
}

// containerOf returns the container of replica 0 of a function of a
// provider, or "" when it has none.
func containerOf(ctx context.Context, docker *client.Client, p *Provider, name string) (id string, err error) {
	f := filters.NewArgs(
		filters.Arg("label", "io.faas-criu.instance="+p.InstanceID()),
		filters.Arg("label", "com.openfaas.function="+name),
	)
	list, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return "", fmt.Errorf("containers of %s: %w", name, err)
	}
	for _, c := range list {
		if c.Labels["io.faas-criu.role"] != "sandbox" {
			return c.ID, nil
		}
	}
	return "", nil
}

// containerIP returns a container's address on a network; for a container
// in another's network namespace (a function in its replica's sandbox),
// that other container's address.
func containerIP(ctx context.Context, docker *client.Client, id, network string) (string, error) {
	ci, err := docker.ContainerInspect(ctx, id)
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", id, err)
	}
	if ci.HostConfig != nil && ci.HostConfig.NetworkMode.IsContainer() {
		return containerIP(ctx, docker, ci.HostConfig.NetworkMode.ConnectedContainer(), network)
	}
	if ci.NetworkSettings == nil || ci.NetworkSettings.Networks[network] == nil {
		return "", fmt.Errorf("container %s is not on network %s", id, network)
	}
	return ci.NetworkSettings.Networks[network].IPAddress, nil
}

// removeLeftovers force-removes the benchmark's containers (of this run or
// an interrupted earlier one) and the given networks.
func removeLeftovers(ctx context.Context, docker *client.Client, networks ...string) error {
	f := filters.NewArgs(filters.Arg("label", benchLabel))
	list, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list benchmark containers: %w", err)
	}
	// The replicas' network sandboxes carry no function labels: they are
	// found on the benchmark's networks.
	for _, n := range networks {
		on, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("network", n))})
		if err == nil {
			list = append(list, on...)
		}
	}
	var firstErr error
	for _, c := range list {
		if err := docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) && firstErr == nil {
			firstErr = fmt.Errorf("remove container %s: %w", c.ID[:12], err)
		}
	}
	for _, n := range networks {
		if err := docker.NetworkRemove(ctx, n); err != nil && !client.IsErrNotFound(err) && firstErr == nil {
			firstErr = fmt.Errorf("remove network %s: %w", n, err)
		}
	}
	return firstErr
}

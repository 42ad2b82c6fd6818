package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// fixtureImage is the benchmark's function: test/fixture, built here.
const fixtureImage = "faas-criu-bench/fixture:latest"

// buildFixture compiles test/fixture statically and builds a FROM scratch
// image of it through the Docker API, as the integration tests do.
func buildFixture(ctx context.Context, docker *client.Client, root string) error {
	dir, err := os.MkdirTemp("", "faas-criu-bench-img-")
	if err != nil {
		return fmt.Errorf("build fixture: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "fn")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s", "-o", bin, "./test/fixture")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./test/fixture: %w\n%s", err, out)
	}
	fn, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("build fixture: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name    string
		mode    int64
		content []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY fn /fn\nCOPY tmp /tmp\nENTRYPOINT [\"/fn\"]\n")},
		{"fn", 0o755, fn},
		{"tmp/.keep", 0o644, nil},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.content)), Typeflag: tar.TypeReg}); err != nil {
			return fmt.Errorf("build context: %w", err)
		}
		if _, err := tw.Write(f.content); err != nil {
			return fmt.Errorf("build context: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	resp, err := docker.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{fixtureImage}, Remove: true, ForceRemove: true})
	if err != nil {
		return fmt.Errorf("docker build %s: %w", fixtureImage, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("docker build %s: %s", fixtureImage, out)
	}
	return nil
}

// removeFixture removes the image built by buildFixture.
func removeFixture(ctx context.Context, docker *client.Client) error {
	_, err := docker.ImageRemove(ctx, fixtureImage, image.RemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("remove image %s: %w", fixtureImage, err)
	}
	return nil
}

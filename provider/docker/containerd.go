package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Docker 20.10 takes a checkpoint by asking its containerd for one into
// containerd's content store: CRIU writes the images to a temporary
// directory, containerd tars and hashes them into its store, and dockerd
// reads them back out and unpacks them where it keeps the container's
// checkpoints. That is about 13 ms of CPU per MB each way: 1.5 s of a 100 MB
// function's 2 s suspend. containerd's task checkpoint also takes an image
// path (runc's options), and then has CRIU write straight there and stores
// nothing: the provider asks the engine's own containerd for that, with the
// directory dockerd would have unpacked to.
//
// Docker stays the engine of record. The dump is the same runc/CRIU dump
// Docker asks for (only the exit option, as Docker; runc.conf adds the rest),
// its exit reaches dockerd as every task exit does (the container shows as
// exited, its log and state as after Docker's own checkpoint), and the
// checkpoint lands where `docker checkpoint ls` and `docker start
// --checkpoint` look. Whatever stops the direct way before CRIU runs (no
// containerd reachable from here, a container it does not know, a runtime
// whose options differ) falls back to Docker's checkpoint API; a dump that
// CRIU itself failed is not retried, nor one whose answer was lost (the
// provider then checks with Docker what runs, as after any failed dump).

// runcCheckpointOptions is the type of the options of the runc v2 shim's
// checkpoint (containerd.runc.v1.CheckpointOptions), which Docker 20.10
// sends too, named as containerd's typeurl names it.
const runcCheckpointOptions = "containerd.runc.v1.CheckpointOptions"

// containerdNamespace is where dockerd keeps its containers in containerd.
const containerdNamespace = "moby"

// errNotDirect says the direct checkpoint did not start: Docker's API is
// the way.
var errNotDirect = errors.New("containerd's checkpoint could not be asked for directly")

// grpcStatus is a gRPC call's failure as the server stated it.
type grpcStatus struct {
	code int
	msg  string
}

func (s *grpcStatus) Error() string { return fmt.Sprintf("containerd: %s (code %d)", s.msg, s.code) }

// gRPC status codes that mean the call did not reach the dump.
const (
	codeInvalidArgument = 3
	codeNotFound        = 5
	codeUnimplemented   = 12
	codeUnavailable     = 14
)

// beforeDump says a failed direct checkpoint stopped before CRIU ran, so
// that Docker's way is worth trying.
func beforeDump(err error) bool {
	if errors.Is(err, errNotDirect) {
		return true
	}
	var st *grpcStatus
	if !errors.As(err, &st) {
		// The request went out and its answer was lost (containerd
		// died under it, say): the shim may have dumped the container
		// all the same, so Docker must not be asked for another dump.
		return false
	}
	switch st.code {
	case codeInvalidArgument, codeNotFound, codeUnimplemented, codeUnavailable:
		return true
	}
	// containerd refuses options of another runtime with a plain error.
	return strings.Contains(st.msg, "invalid task checkpoint option")
}

// containerd reaches the engine's containerd over its gRPC socket.
type containerd struct {
	mu     sync.Mutex
	client *http.Client // of its socket, once found; nil to look again
}

// cached returns the client for the engine's containerd if its socket was
// found already, or nil.
func (c *containerd) cached() *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

// endpoint returns the HTTP/2 client for the engine's containerd, finding
// its socket from the shim of the running container pid (which was started
// with containerd's address) the first time.
func (c *containerd) endpoint(id string, pid int) (*http.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	addr, err := shimAddress(id, pid)
	if err != nil {
		return nil, err
	}
	c.client = c.dial(addr)
	return c.client, nil
}

// dial returns an HTTP/2 client of the gRPC socket addr.
func (c *containerd) dial(addr string) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true) // gRPC without TLS: HTTP/2 with prior knowledge
	return &http.Client{Transport: &http.Transport{
		Protocols:       &p,
		IdleConnTimeout: time.Minute, // suspends come in bursts: no socket kept between
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		},
	}}
}

// forget drops the socket found, after it failed: the next checkpoint looks
// again (an engine restarted with another containerd).
func (c *containerd) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		c.client.CloseIdleConnections()
	}
	c.client = nil
}

// shimAddress reads containerd's socket from the command line of the shim
// that runs container id, the parent of its first process pid. The shim is
// checked to be that container's, so a pid from another pid namespace (the
// provider in a container) is not taken for it.
func shimAddress(id string, pid int) (string, error) {
	if pid <= 0 {
		return "", fmt.Errorf("%w: container %.12s has no process", errNotDirect, id)
	}
	ppid, err := parentPID(pid)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNotDirect, err)
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(ppid), "cmdline"))
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNotDirect, err)
	}
	return parseShimArgs(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), id)
}

// parseShimArgs finds -address in a containerd-shim-runc-v2 command line of
// container id in dockerd's namespace.
func parseShimArgs(args []string, id string) (string, error) {
	if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
		return "", fmt.Errorf("%w: the parent of container %.12s's process is not a containerd shim", errNotDirect, id)
	}
	flags := map[string]string{}
	for i := 1; i+1 < len(args); i++ {
		if name, ok := strings.CutPrefix(args[i], "-"); ok {
			flags[strings.TrimPrefix(name, "-")] = args[i+1]
			i++
		}
	}
	if flags["id"] != id || flags["namespace"] != containerdNamespace || flags["address"] == "" {
		return "", fmt.Errorf("%w: shim %q is not container %.12s's in namespace %s", errNotDirect, strings.Join(args, " "), id, containerdNamespace)
	}
	return flags["address"], nil
}

func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no PPid in /proc/%d/status", pid)
}

// checkpointRequest encodes containerd.services.tasks.v1.CheckpointTaskRequest
// for container id, with the runc options exit and image_path.
func checkpointRequest(id, imagePath string, exit bool) []byte {
	var opts []byte
	if exit {
		opts = protowire.AppendTag(opts, 1, protowire.VarintType) // exit
		opts = protowire.AppendVarint(opts, 1)
	}
	opts = protowire.AppendTag(opts, 8, protowire.BytesType) // image_path
	opts = protowire.AppendString(opts, imagePath)
	var anyMsg []byte
	anyMsg = protowire.AppendTag(anyMsg, 1, protowire.BytesType) // type_url
	anyMsg = protowire.AppendString(anyMsg, runcCheckpointOptions)
	anyMsg = protowire.AppendTag(anyMsg, 2, protowire.BytesType) // value
	anyMsg = protowire.AppendBytes(anyMsg, opts)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType) // container_id
	req = protowire.AppendString(req, id)
	req = protowire.AppendTag(req, 3, protowire.BytesType) // options
	return protowire.AppendBytes(req, anyMsg)
}

// unary makes one gRPC call: the message framed (uncompressed, 4-byte
// length), the status read from the trailers, or from the headers of an
// answer that is only a status.
func unary(ctx context.Context, hc *http.Client, method string, msg []byte) error {
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://containerd"+method, bytes.NewReader(append(frame, msg...)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	req.Header.Set("containerd-namespace", containerdNamespace)
	resp, err := hc.Do(req)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %w", errNotDirect, err) // nothing was sent
	}
	if err != nil {
		return fmt.Errorf("containerd's answer was lost, the dump's outcome is unknown: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Not a gRPC server: nothing was done.
		return fmt.Errorf("%w: HTTP %d from %s", errNotDirect, resp.StatusCode, method)
	}
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return fmt.Errorf("containerd's answer was lost, the dump's outcome is unknown: %w", err)
	}
	status, message := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if status == "" {
		status, message = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	code, err := strconv.Atoi(status)
	if err != nil {
		return fmt.Errorf("containerd answered no gRPC status (%q), the dump's outcome is unknown", status)
	}
	if code == 0 {
		return nil
	}
	if m, err := url.PathUnescape(message); err == nil {
		message = m
	}
	return &grpcStatus{code: code, msg: message}
}

package docker

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// fields decodes one level of a protobuf message: numbers to their raw
// values (varints as uint64, length-delimited as []byte).
func fields(t *testing.T, b []byte) map[protowire.Number]any {
	t.Helper()
	out := map[protowire.Number]any{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			out[num], b = v, b[m:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			out[num], b = v, b[m:]
		default:
			t.Fatalf("field %d: unexpected wire type %d", num, typ)
		}
	}
	return out
}

// The request is containerd's CheckpointTaskRequest carrying the runc
// shim's options, as Docker 20.10 sends them, plus the image path.
func TestCheckpointRequest(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, exit := range []bool{true, false} {
		req := fields(t, checkpointRequest(id, "/var/lib/docker/containers/x/checkpoints/cp", exit))
		if string(req[1].([]byte)) != id {
			t.Errorf("container_id %q", req[1])
		}
		if _, ok := req[2]; ok {
			t.Error("parent_checkpoint set")
		}
		anyMsg := fields(t, req[3].([]byte))
		if string(anyMsg[1].([]byte)) != "containerd.runc.v1.CheckpointOptions" {
			t.Errorf("type_url %q", anyMsg[1])
		}
		opts := fields(t, anyMsg[2].([]byte))
		if got := opts[8]; string(got.([]byte)) != "/var/lib/docker/containers/x/checkpoints/cp" {
			t.Errorf("image_path %q", got)
		}
		if v, ok := opts[1]; ok != exit || (ok && v.(uint64) != 1) {
			t.Errorf("exit=%v: field 1 is %v (present %v)", exit, v, ok)
		}
		if len(opts) != map[bool]int{true: 2, false: 1}[exit] {
			t.Errorf("exit=%v: options %v, want only exit and image_path", exit, opts)
		}
	}
}

func TestParseShimArgs(t *testing.T) {
	id := strings.Repeat("0f", 32)
	shim := []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", id, "-address", "/var/run/docker/containerd/containerd.sock"}
	if addr, err := parseShimArgs(shim, id); err != nil || addr != "/var/run/docker/containerd/containerd.sock" {
		t.Errorf("shim of the container: %q %v", addr, err)
	}
	bad := map[string][]string{
		"another container's shim": {"containerd-shim-runc-v2", "-namespace", "moby", "-id", strings.Repeat("1e", 32), "-address", "/a.sock"},
		"another namespace":        {"containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", id, "-address", "/a.sock"},
		"no address":               {"containerd-shim-runc-v2", "-namespace", "moby", "-id", id},
		"not a shim":               {"/sbin/init", "-namespace", "moby", "-id", id, "-address", "/a.sock"},
		"nothing":                  nil,
	}
	for why, args := range bad {
		if addr, err := parseShimArgs(args, id); !errors.Is(err, errNotDirect) {
			t.Errorf("%s: %q %v, want errNotDirect", why, addr, err)
		}
	}
}

// fakeContainerd serves gRPC's wire format on a unix socket with handle.
func fakeContainerd(t *testing.T, handle http.HandlerFunc) *http.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: handle, Protocols: &p}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return (&containerd{}).dial(sock)
}

func TestUnary(t *testing.T) {
	var gotPath, gotNS, gotType string
	var gotMsg []byte
	ok := fakeContainerd(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotNS, gotType = r.URL.Path, r.Header.Get("containerd-namespace"), r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		if len(b) >= 5 && int(binary.BigEndian.Uint32(b[1:5])) == len(b)-5 {
			gotMsg = b[5:]
		}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		w.Write([]byte{0, 0, 0, 0, 0}) // an empty CheckpointTaskResponse
		w.Header().Set("Grpc-Status", "0")
	})
	if err := unary(context.Background(), ok, "/containerd.services.tasks.v1.Tasks/Checkpoint", []byte("msg")); err != nil {
		t.Fatalf("unary: %v", err)
	}
	if gotPath != "/containerd.services.tasks.v1.Tasks/Checkpoint" || gotNS != "moby" || gotType != "application/grpc" || string(gotMsg) != "msg" {
		t.Errorf("server saw path %q namespace %q type %q message %q", gotPath, gotNS, gotType, gotMsg)
	}

	cases := []struct {
		status, message string
		beforeDump      bool
	}{
		// CRIU failed: not worth Docker's way (the dump would fail again).
		{"2", "criu failed: type NOTIFY errno 0%0Apath= /run/x/criu-dump.log", false},
		{"5", "container \"x\" in namespace \"moby\": not found", true},
		{"2", "invalid task checkpoint option for io.containerd.runtime.v1.linux", true},
		{"14", "connection closed", true},
	}
	for _, c := range cases {
		srv := fakeContainerd(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			// A status-only answer: the status in the headers.
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", c.status)
			w.Header().Set("Grpc-Message", c.message)
			w.WriteHeader(http.StatusOK)
		})
		err := unary(context.Background(), srv, "/m", nil)
		var st *grpcStatus
		if !errors.As(err, &st) || !strings.Contains(err.Error(), strings.Split(c.message, "%")[0]) {
			t.Errorf("status %s: %v", c.status, err)
		}
		if c.status == "2" && strings.Contains(c.message, "%0A") && !strings.Contains(err.Error(), "errno 0\npath=") {
			t.Errorf("message not unescaped: %v", err)
		}
		if beforeDump(err) != c.beforeDump {
			t.Errorf("status %s %q: beforeDump %v, want %v", c.status, c.message, beforeDump(err), c.beforeDump)
		}
	}

	// The answer lost mid-call (containerd died under the dump): its
	// outcome is unknown, and Docker is not asked for a second dump.
	lost := fakeContainerd(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		panic(http.ErrAbortHandler)
	})
	if err := unary(context.Background(), lost, "/m", nil); err == nil || beforeDump(err) {
		t.Errorf("answer lost: %v, beforeDump %v", err, beforeDump(err))
	}
	// Not gRPC at all: nothing was done.
	notGRPC := fakeContainerd(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	if err := unary(context.Background(), notGRPC, "/m", nil); !beforeDump(err) {
		t.Errorf("HTTP 404: %v, want Docker's way", err)
	}

	// Nobody there: Docker's way.
	c := &containerd{}
	err := unary(context.Background(), c.dial(filepath.Join(t.TempDir(), "none.sock")), "/m", nil)
	if !errors.Is(err, errNotDirect) || !beforeDump(err) {
		t.Errorf("no containerd: %v", err)
	}
}

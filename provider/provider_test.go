package provider

import (
	"errors"
	"github.com/faas-criu/faas-criu/api"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

func TestParseMemory(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		err  bool
	}{
		{"", 0, false},
		{"128Mi", 128 << 20, false},
		{"1Gi", 1 << 30, false},
		{"64Ki", 64 << 10, false},
		{"500M", 500e6, false},
		{"2G", 2e9, false},
		{"1.5Gi", 3 << 29, false},
		{"1048576", 1 << 20, false},
		{"lots", 0, true},
		{"-5Mi", 0, true},
		{"Mi", 0, true},
		{"1e400", 0, true},
	}
	for _, c := range cases {
		got, err := ParseMemory(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("ParseMemory(%q) = %d, %v", c.in, got, err)
		}
	}
}

func TestParseCPU(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		err  bool
	}{
		{"", 0, false},
		{"1", 1e9, false},
		{"500m", 5e8, false},
		{"0.25", 2.5e8, false},
		{"2.5", 2.5e9, false},
		{"x", 0, true},
		{"-1", 0, true},
		{"1e7", 0, true},
	}
	for _, c := range cases {
		got, err := ParseCPU(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("ParseCPU(%q) = %d, %v", c.in, got, err)
		}
	}
}

func TestValidateNames(t *testing.T) {
	for _, ok := range []string{"a", "figlet", "my-fn-2", strings.Repeat("a", 63)} {
		if err := api.ValidateName(ok); err != nil {
			t.Errorf("api.ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a_b", "a.b", "../x", "a/b", strings.Repeat("a", 64), "a b"} {
		if err := api.ValidateName(bad); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("api.ValidateName(%q) = %v, want api.ErrInvalid", bad, err)
		}
	}
	for _, ok := range []string{"api-key", "db_password", "tls.crt", "A1"} {
		if err := api.ValidateSecretName(ok); err != nil {
			t.Errorf("api.ValidateSecretName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../etc", "a/b", "/abs", ".hidden", "a..b", "a b", "a\x00b"} {
		if err := api.ValidateSecretName(bad); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("api.ValidateSecretName(%q) = %v, want api.ErrInvalid", bad, err)
		}
	}
}

func TestGoDebug(t *testing.T) {
	cases := map[string]string{
		"":                       "multipathtcp=0",
		"http2client=0":          "http2client=0,multipathtcp=0",
		"multipathtcp=1":         "multipathtcp=1",
		"x=1,multipathtcp=2,y=3": "x=1,multipathtcp=2,y=3",
	}
	for in, want := range cases {
		if got := goDebug(in); got != want {
			t.Errorf("goDebug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIPAM(t *testing.T) {
	a, err := newIPAM("10.9.0.0/29", "")
	if err != nil {
		t.Fatal(err)
	}
	// .0 network, .1 gateway, .7 broadcast: .2 to .6 are handed out.
	var got []string
	for {
		ip, err := a.allocate()
		if err != nil {
			if !errors.Is(err, api.ErrUnavailable) {
				t.Fatal(err)
			}
			break
		}
		got = append(got, ip)
	}
	if strings.Join(got, " ") != "10.9.0.2 10.9.0.3 10.9.0.4 10.9.0.5 10.9.0.6" {
		t.Fatalf("allocated %v", got)
	}
	a.release("10.9.0.4")
	if ip, _ := a.allocate(); ip != "10.9.0.4" {
		t.Errorf("after release got %s", ip)
	}
	for _, bad := range []string{"nonsense", "10.0.0.0/30", "fd00::/64"} {
		if _, err := newIPAM(bad, ""); err == nil {
			t.Errorf("newIPAM(%q) accepted", bad)
		}
	}
}

func TestResources(t *testing.T) {
	cases := []struct {
		name string
		dep  types.FunctionDeployment
		ok   bool
		mem  int64
		cpu  int64
	}{
		{"none", types.FunctionDeployment{}, true, 0, 0},
		{"limits", types.FunctionDeployment{Limits: &types.FunctionResources{Memory: "64Mi", CPU: "1"}}, true, 64 << 20, 1e9},
		// Below Docker's minimum: raised to it, not refused (issue 11, fault 4).
		{"below docker's minimum", types.FunctionDeployment{Limits: &types.FunctionResources{Memory: "5Mi", CPU: "100m"}}, true, 6 << 20, 1e8},
		{"request above limit", types.FunctionDeployment{
			Limits: &types.FunctionResources{Memory: "64Mi"}, Requests: &types.FunctionResources{Memory: "128Mi"}}, false, 0, 0},
		{"bad cpu request", types.FunctionDeployment{Requests: &types.FunctionResources{CPU: "fast"}}, false, 0, 0},
	}
	for _, c := range cases {
		r, err := resources(c.dep)
		if (err == nil) != c.ok || (c.ok && (r.Memory != c.mem || r.NanoCPUs != c.cpu)) {
			t.Errorf("%s: %+v %v", c.name, r, err)
		}
		if err != nil && !errors.Is(err, api.ErrInvalid) {
			t.Errorf("%s: error %v is not api.ErrInvalid", c.name, err)
		}
	}
}

func TestSpecHash(t *testing.T) {
	a := types.FunctionDeployment{Service: "f", Image: "i", EnvVars: map[string]string{"A": "1", "B": "2"}}
	b := types.FunctionDeployment{Service: "f", Image: "i", EnvVars: map[string]string{"B": "2", "A": "1"}}
	if specHash(a, "sha256:1") != specHash(b, "sha256:1") {
		t.Error("spec hash depends on map order")
	}
	if specHash(a, "sha256:1") == specHash(a, "sha256:2") {
		t.Error("spec hash ignores a rebuilt image")
	}
	b.EnvVars["A"] = "3"
	if specHash(a, "sha256:1") == specHash(b, "sha256:1") {
		t.Error("spec hash ignores a changed variable")
	}
}

// A line longer than the bound arrives in pieces and the stream goes on
// (issue 11, fault 7: bufio.Scanner stopped the replica's stream there).
func TestReadLinesLongLine(t *testing.T) {
	long := strings.Repeat("x", 3*MaxLogLine+5)
	in := "2026-12-02T10:00:00Z " + long + "\n2026-12-02T10:00:01Z after\n"
	var pieces []string
	var conts []bool
	err := readLines(strings.NewReader(in), MaxLogLine, func(line string, cont bool, ts time.Time) (time.Time, bool) {
		pieces = append(pieces, line)
		conts = append(conts, cont)
		return ts, true
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pieces); n < 2 || pieces[n-1] != "2026-12-02T10:00:01Z after" || conts[n-1] {
		t.Fatalf("last piece %q (cont %v), want the line after the long one", pieces[len(pieces)-1], conts[len(conts)-1])
	}
	joined := strings.Join(pieces[:len(pieces)-1], "")
	if joined != "2026-12-02T10:00:00Z "+long {
		t.Errorf("long line came back as %d bytes in %d pieces, want %d bytes", len(joined), len(pieces)-1, len(long)+21)
	}
	for i, p := range pieces {
		if len(p) > MaxLogLine {
			t.Errorf("piece %d is %d bytes, over the bound %d", i, len(p), MaxLogLine)
		}
		if i > 0 && i < len(pieces)-1 && !conts[i] {
			t.Errorf("piece %d of the long line not marked as a continuation", i)
		}
	}
}

// Docker cuts a long line into 16 KiB entries, each with its own timestamp
// in a timestamped stream; the joiner gives the line back whole.
func TestPartialJoiner(t *testing.T) {
	long := strings.Repeat("x", 2*dockerPartialSize+100)
	ts := []string{"2026-12-02T10:00:00.1Z ", "2026-12-02T10:00:00.123456789Z ", "2026-12-02T10:00:00.2Z "}
	in := ts[0] + long[:dockerPartialSize] + ts[1] + long[dockerPartialSize:2*dockerPartialSize] + ts[2] + long[2*dockerPartialSize:] + "\n" +
		"2026-12-02T10:00:01Z short 2026-12-02T10:00:01Z stays\n" + "no timestamp\n"
	var lines []string
	if err := readLines(newPartialJoiner(strings.NewReader(in)), MaxLogLine, func(line string, cont bool, _ time.Time) (time.Time, bool) {
		if cont {
			lines[len(lines)-1] += line
		} else {
			lines = append(lines, line)
		}
		return time.Time{}, true
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{ts[0] + long, "2026-12-02T10:00:01Z short 2026-12-02T10:00:01Z stays", "no timestamp"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d: %d bytes %.60q..., want %d bytes", i, len(lines[i]), lines[i], len(want[i]))
		}
	}
}

// A followed stream: a line is passed on as soon as it arrives, without
// waiting for more bytes behind it.
func TestPartialJoinerDoesNotWait(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	got := make(chan string, 1)
	go readLines(newPartialJoiner(pr), MaxLogLine, func(line string, _ bool, _ time.Time) (time.Time, bool) {
		got <- line
		return time.Time{}, true
	})
	go pw.Write([]byte("2026-12-02T10:00:00Z hi\n"))
	select {
	case l := <-got:
		if l != "2026-12-02T10:00:00Z hi" {
			t.Errorf("line %q", l)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a complete line was held back waiting for more")
	}
}

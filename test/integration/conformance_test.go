//go:build integration && conformance

// The conformance suite (`make conformance`): the real faas-cli, unmodified,
// drives faas-criu as a user would, with functions on the real watchdogs.
// It is built only with the conformance tag, so `make test` does not run it
// twice; scripts/conformance.sh fails the run on any skipped test.
package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Images the session deploys, built locally from the real watchdogs.
const (
	// The classic watchdog forking busybox commands, as OpenFaaS's
	// functions/alpine does (fprocess chooses the command).
	classicImage = "conformance/classic:1"
	// of-watchdog in http mode in front of the fixture on 127.0.0.1:8082.
	httpImage = "conformance/http:1"
)

func staticBusybox(t *testing.T) []byte {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	t.Fatal("no busybox: install Debian's busybox-static (scripts/conformance.sh does)")
	return nil
}

// buildWatchdogImages builds the two function images offline, FROM scratch.
func buildWatchdogImages(t *testing.T) {
	t.Helper()
	classic := map[string][]byte{
		"Dockerfile": []byte(`FROM scratch
COPY bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY bin/fwatchdog /fwatchdog
COPY tmp /tmp
ENV PATH=/bin fprocess=cat
EXPOSE 8080
CMD ["/fwatchdog"]
`),
		"bin/busybox":   staticBusybox(t),
		"bin/fwatchdog": mustRead(t, tool(t, "FWATCHDOG", "fwatchdog")),
		"tmp/.keep":     nil,
	}
	if err := BuildImage(classicImage, classic); err != nil {
		t.Fatal(err)
	}
	fixture := filepath.Join(t.TempDir(), "fixture")
	if err := goBuild(fixture, "./test/fixture"); err != nil {
		t.Fatal(err)
	}
	http := map[string][]byte{
		"Dockerfile": []byte(`FROM scratch
COPY bin/fwatchdog /fwatchdog
COPY fn /fixture
COPY tmp /tmp
ENV mode=http upstream_url=http://127.0.0.1:8082 fprocess=/fixture LISTEN=127.0.0.1:8082
EXPOSE 8080
CMD ["/fwatchdog"]
`),
		"bin/fwatchdog": mustRead(t, tool(t, "OF_WATCHDOG", "of-watchdog")),
		"fn":            mustRead(t, fixture),
		"tmp/.keep":     nil,
	}
	if err := BuildImage(httpImage, http); err != nil {
		t.Fatal(err)
	}
}

// goBuilderImage is the local stand-in for golang that faas-criu build
// makes (faas-criu/go-builder:<this Go's version>); faas-cli up builds the
// template with it.
func goBuilderImage() string {
	return "faas-criu/go-builder:" + strings.TrimPrefix(runtime.Version(), "go")
}

// TestConformanceFaasCLI runs the README's faas-cli session against a
// provider, naming each command, and checks what each one prints.
func TestConformanceFaasCLI(t *testing.T) {
	faasCLI := tool(t, "FAAS_CLI", "faas-cli")
	checkREADME(t)
	buildWatchdogImages(t)
	p := StartProvider(t)

	// The session's shell: faas-cli and faas-criu on PATH, faas-cli's
	// config in ./.openfaas (CI=true), the templates copied in as the
	// README says.
	work := t.TempDir()
	binDir := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"faas-cli": faasCLI, "faas-criu": providerBin} {
		if err := os.Symlink(target, filepath.Join(binDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot, "templates", "template"), work).CombinedOutput(); err != nil {
		t.Fatalf("copy the templates: %v %s", err, out)
	}
	env := mergeEnv(os.Environ(), []string{
		"PATH=" + binDir + ":" + os.Getenv("PATH"),
		"CI=true",
		"OPENFAAS_URL=" + p.URL,
		"PASSWORD=" + p.Pass,
		"GO_IMAGE=" + goBuilderImage(),
		"HOME=" + work,
	})
	start := time.Now()
	for i, s := range session {
		sub := subcommand(s.cmd)
		fmt.Printf("=== conformance %2d/%d: %s\n$ %s\n", i+1, len(session), sub, s.cmd)
		t0 := time.Now()
		cmd := exec.Command("bash", "-c", s.cmd)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		text := stripANSI(string(out))
		fmt.Print(indent(text))
		if err != nil {
			t.Fatalf("%s: %v\n%s", s.cmd, err, text)
		}
		if msg := s.check(text); msg != "" {
			t.Fatalf("%s: %s\n%s", s.cmd, msg, text)
		}
		fmt.Printf("--- ok   %s (%s)\n", sub, time.Since(t0).Round(time.Millisecond))
	}
	t.Logf("%d faas-cli session steps passed in %s", len(session), time.Since(start).Round(time.Millisecond))
}

// subcommand names a step's command: "faas-cli logs", "faas-criu build".
func subcommand(line string) string {
	for _, tool := range []string{"faas-cli", "faas-criu"} {
		if _, rest, ok := strings.Cut(line, tool+" "); ok {
			f := strings.Fields(rest)
			name := tool + " " + f[0]
			if (f[0] == "secret" || f[0] == "namespace") && len(f) > 1 {
				name += " " + f[1]
			}
			return name
		}
	}
	return line
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

func indent(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		b.WriteString("    " + sc.Text() + "\n")
	}
	return b.String()
}

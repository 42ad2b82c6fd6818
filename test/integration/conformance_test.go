//go:build conformance

// The conformance suite (`make conformance`): the real faas-cli, unmodified,
// drives faas-criu as a user would, with functions on the real watchdogs.
// It is built only with the conformance tag, so `make test` does not run it
// twice; scripts/conformance.sh fails the run on any skipped test.
package integration

import (
	"bufio"
	"bytes"
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

// step is one line of the session: the shell command as the README shows
// it, and what its output must show.
type step struct {
	cmd   string
	check func(out string) string // "" when the output is right
}

func contains(want ...string) func(string) string {
	return func(out string) string {
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Sprintf("output lacks %q", w)
			}
		}
		return ""
	}
}

func matches(res ...string) func(string) string {
	return func(out string) string {
		for _, re := range res {
			if !regexp.MustCompile(re).MatchString(out) {
				return fmt.Sprintf("output does not match %q", re)
			}
		}
		return ""
	}
}

// session is the README's faas-cli walk-through, line for line (the README
// block marked "sh conformance" must equal it: TestConformanceREADME).
var session = []step{
	{`echo -n "$PASSWORD" | faas-cli login --username admin --password-stdin`, contains("credentials saved for admin")},
	{`faas-cli version --warn-update=false`, matches(`Provider\s+name:\s+faas-criu\s+orchestration:\s+docker`)},
	{`faas-cli secret create api-key --from-literal s3cret`, contains("Created")},
	{`faas-cli secret list`, contains("api-key")},
	{`faas-cli deploy --image conformance/classic:1 --name wc --fprocess "wc -c" -e GREETING=hi -l team=edge --annotation topic=sensors --update=false`, contains("Deployed. 202")},
	{`faas-cli deploy --image conformance/classic:1 --name showkey --fprocess "cat /var/openfaas/secrets/api-key" --secret api-key --update=false`, contains("Deployed. 202")},
	{`faas-cli deploy --image conformance/http:1 --name web --update=false`, contains("Deployed. 202")},
	{`faas-cli ready wc`, contains("is ready")},
	{`faas-cli ready showkey`, contains("is ready")},
	{`faas-cli ready web`, contains("is ready")},
	{`echo -n hello | faas-cli invoke wc`, matches(`^\s*5\s*$`)},
	{`faas-cli invoke showkey <<< ''`, contains("s3cret")},
	{`faas-cli invoke web <<< ''`, contains("hello from fixture")},
	{`faas-cli list -v`, matches(`(?m)^wc\s+conformance/classic:1\s+1\s+1`, `(?m)^web\s+conformance/http:1\s`, `(?m)^showkey\s`)},
	{`faas-cli describe wc`, matches(`Status:\s+Ready`, `Function Process:\s+wc -c`, `faas_function: wc`, `team: edge`, `topic: sensors`, `GREETING: hi`)},
	{`faas-cli logs web --lines 1 --tail=false`, func(out string) string {
		if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 1 {
			return fmt.Sprintf("%d lines, want 1", n)
		}
		return ""
	}},
	{`faas-cli logs web --since 10m --tail=false`, contains("fixture listening on 127.0.0.1:8082")},
	{`faas-cli secret update api-key --from-literal n3w`, contains("Updated")},
	{`faas-cli namespace list`, contains("openfaas-fn")},
	{`faas-cli remove showkey`, contains("Deleting: showkey")},
	{`faas-cli secret remove api-key`, contains("Removed")},
	{`faas-cli remove wc`, contains("Deleting: wc")},
	{`faas-cli remove web`, contains("Deleting: web")},
	// A stack from the templates, built by faas-criu with no registry.
	{`faas-cli new --lang go-http myfn`, contains("Stack file written: stack.yaml")},
	{`faas-criu build -f stack.yaml`, contains("built myfn")},
	{`faas-cli deploy -f stack.yaml`, contains("Deployed. 202")},
	{`faas-cli up --skip-push --build-arg GO_IMAGE=$GO_IMAGE -f stack.yaml`, contains("Deployed. 202")},
	{`faas-cli ready myfn`, contains("is ready")},
	{`faas-cli invoke myfn <<< 'edge'`, contains("edge")},
	{`faas-cli remove -f stack.yaml`, contains("Deleting: myfn")},
}

// tool finds a real OpenFaaS binary: env, then PATH. Missing, the suite
// fails and says where to get it; it never skips.
func tool(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found (set %s or put it on PATH): `make conformance` takes the unmodified builds in "+
		"../shared/ecosystem/bin (beside the clone; see its README.md). Without them the suite cannot run.", name, env)
	return ""
}

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

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
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

// TestConformanceREADME: the README's faas-cli examples are exactly the
// session this suite runs.
func TestConformanceREADME(t *testing.T) { checkREADME(t) }

// checkREADME compares the README's block marked "sh conformance" with the
// session, line for line, and fails on any faas-cli command shown in the
// README outside that block.
func checkREADME(t *testing.T) {
	t.Helper()
	readme := mustRead(t, filepath.Join(repoRoot, "README.md"))
	var block, outside []string
	inBlock, inFence, found := false, false, 0
	for n, line := range bytes.Split(readme, []byte("\n")) {
		l := string(line)
		if strings.HasPrefix(l, "```") {
			if !inFence {
				inFence = true
				inBlock = strings.TrimSpace(strings.TrimPrefix(l, "```")) == "sh conformance"
				if inBlock {
					found++
				}
			} else {
				inFence, inBlock = false, false
			}
			continue
		}
		if !inFence {
			continue
		}
		trimmed := strings.TrimSpace(l)
		switch {
		case inBlock:
			if trimmed != "" && !strings.HasPrefix(trimmed, "#") {
				block = append(block, trimmed)
			}
		case regexp.MustCompile(`(^|[|&;]\s*)faas-cli\s`).MatchString(trimmed):
			outside = append(outside, fmt.Sprintf("README.md:%d: %s", n+1, trimmed))
		}
	}
	if found != 1 {
		t.Fatalf("README.md has %d blocks marked ```sh conformance, want 1", found)
	}
	var want []string
	for _, s := range session {
		want = append(want, s.cmd)
	}
	if strings.Join(block, "\n") != strings.Join(want, "\n") {
		t.Errorf("the README's ```sh conformance block differs from the session the suite runs:\nREADME:\n%s\nsuite:\n%s",
			strings.Join(block, "\n"), strings.Join(want, "\n"))
	}
	if len(outside) > 0 {
		t.Errorf("faas-cli commands in the README that the suite does not run (put them in the conformance block):\n%s",
			strings.Join(outside, "\n"))
	}
}

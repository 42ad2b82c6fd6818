//go:build integration

// The session the conformance suite (`make conformance`, conformance_test.go)
// runs, and the check that the README shows exactly it. This file is built
// without the conformance tag, so `make test` catches a README that drifted.
package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
	{`faas-cli invoke web --async <<< ''`, contains("Function submitted asynchronously")},
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
	// In-place hibernation: the container stays up under faas-criu-init
	// (installed by setup), only the function's processes are dumped.
	{`faas-cli deploy --image conformance/http:1 --name nap --label com.openfaas.criu.in-place=true --update=false`, contains("Deployed. 202")},
	{`faas-cli ready nap`, contains("is ready")},
	{`curl -s $OPENFAAS_URL/function/nap/count`, matches(`^\s*1\s*$`)},
	{`curl -sf -u admin:$PASSWORD -d '{"serviceName":"nap","replicas":0}' $OPENFAAS_URL/system/scale-function/nap`, matches(`^\s*$`)},
	{`faas-cli describe nap`, matches(`com\.openfaas\.criu\.state:\s+hibernated`, `com\.openfaas\.criu\.hibernation:\s+in-place`)},
	{`curl -s $OPENFAAS_URL/function/nap/count`, matches(`^\s*2\s*$`)},
	{`faas-cli describe nap`, matches(`com\.openfaas\.criu\.state:\s+awake`, `com\.openfaas\.criu\.last-wake:\s+in-place \d+ms at `)},
	{`faas-cli remove nap`, contains("Deleting: nap")},
	// A stack from the templates, built by faas-criu with no registry.
	{`faas-cli new --lang go-http myfn`, contains("Stack file written: stack.yaml")},
	{`faas-criu build -f stack.yaml`, contains("built myfn")},
	{`faas-cli deploy -f stack.yaml`, contains("Deployed. 202")},
	{`faas-cli up --skip-push --build-arg GO_IMAGE=$GO_IMAGE -f stack.yaml`, contains("Deployed. 202")},
	{`faas-cli ready myfn`, contains("is ready")},
	{`faas-cli invoke myfn <<< 'edge'`, contains("edge")},
	{`faas-cli remove -f stack.yaml`, contains("Deleting: myfn")},
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
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

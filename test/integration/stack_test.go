//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/openfaas/faas-provider/types"
)

// buildStack runs faas-criu build on a stack file, with no registry, using
// the repository's templates.
func buildStack(t *testing.T, stackFile string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(providerBin, "build", "-f", stackFile, "--template-dir", filepath.Join(repoRoot, "templates", "template"))
	cmd.Dir = filepath.Dir(stackFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("faas-criu build -f %s: %v\n%s", stackFile, err, out)
	}
	t.Logf("built %s in %s", stackFile, time.Since(start).Round(time.Millisecond))
	return string(out)
}

func TestExamplesBuildAndDeployOffline(t *testing.T) {
	examples := filepath.Join(repoRoot, "examples", "stack.yml")
	buildStack(t, examples)
	p := StartProvider(t)

	out, err := p.CLI(repoRoot, "deploy", "-f", examples)
	if err != nil || !strings.Contains(out, "hello") || !strings.Contains(out, "sensor") {
		t.Fatalf("faas-criu deploy: %v\n%s", err, out)
	}
	if got := p.MustInvoke("hello", ""); !strings.Contains(got, "Hello") {
		t.Errorf("hello answered %q", got)
	}
	if code, _ := p.Invoke("hello", "/_/health"); code != 200 {
		t.Errorf("hello /_/health: %d", code)
	}

	// The stateful example keeps its readings across hibernation.
	for _, v := range []string{"20.5", "21.5", "22"} {
		if code, body := p.InvokeWith("POST", "sensor", "", strings.NewReader(v)); code != 200 {
			t.Fatalf("reading %s: %d %s", v, code, body)
		}
	}
	stats := func() (s struct {
		Count int
		Mean  float64
		Last  float64
	}) {
		t.Helper()
		if err := json.Unmarshal([]byte(p.MustInvoke("sensor", "")), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := stats()
	if before.Count != 3 || before.Last != 22 {
		t.Fatalf("stats = %+v", before)
	}
	p.Scale("sensor", 0)
	if s := p.Annotation("sensor", stateAnnotation); s != "hibernated" {
		t.Fatalf("sensor is %s", s)
	}
	if after := stats(); after != before {
		t.Errorf("after hibernation stats = %+v, before %+v", after, before)
	}

	// Deploying the same stack again changes nothing.
	p.Scale("sensor", 0)
	if out, err := p.CLI(repoRoot, "deploy", "-f", examples); err != nil {
		t.Fatalf("second deploy: %v\n%s", err, out)
	}
	if s := p.Annotation("sensor", stateAnnotation); s != "hibernated" {
		t.Errorf("an unchanged redeploy woke sensor: %s", s)
	}
	if after := stats(); after.Count != 3 {
		t.Errorf("after redeploy stats = %+v", after)
	}
	p.Delete("hello")
	p.Delete("sensor")
}

// TestUpBuildsAndDeploys: faas-criu up builds the selected function and
// deploys it with faas-cli's override flags; version reports the server.
func TestUpBuildsAndDeploys(t *testing.T) {
	p := StartProvider(t)
	examples := filepath.Join(repoRoot, "examples", "stack.yml")
	out, err := p.CLI(repoRoot, "up", "-f", examples, "--regex", "^hel", "--template-dir", filepath.Join(repoRoot, "templates", "template"),
		"-e", "EXTRA=1", "-l", "team=edge", "--annotation", "owner=ops")
	if err != nil || !strings.Contains(out, "built hello") || !strings.Contains(out, "deployed hello") || strings.Contains(out, "sensor") {
		t.Fatalf("faas-criu up: %v\n%s", err, out)
	}
	st := p.Status("hello")
	if st.EnvVars["EXTRA"] != "1" || st.Labels == nil || (*st.Labels)["team"] != "edge" || st.Annotations == nil || (*st.Annotations)["owner"] != "ops" {
		t.Errorf("hello after up: env %v labels %v annotations %v", st.EnvVars, st.Labels, st.Annotations)
	}
	if got := p.MustInvoke("hello", ""); !strings.Contains(got, "Hello") {
		t.Errorf("hello answered %q", got)
	}
	out, err = p.CLI(repoRoot, "version")
	if err != nil || !strings.Contains(out, "server "+p.URL+": faas-criu ") {
		t.Errorf("faas-criu version: %v\n%s", err, out)
	}
	p.Delete("hello")
}

func TestTemplatesBuildAndAnswer(t *testing.T) {
	p := StartProvider(t)
	for _, tc := range []struct{ lang, want string }{
		{"go-http", "Hello from faas-criu"},
		{"python3-http-debian", "Hello, faas-criu!"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			dir := t.TempDir()
			name := "tpl-" + strings.ReplaceAll(tc.lang, "3", "")
			name = strings.ReplaceAll(strings.ReplaceAll(name, "-http", ""), "-debian", "")
			// A new function, as faas-cli new would make it: the template's
			// handler skeleton in ./NAME.
			copyDir(t, filepath.Join(repoRoot, "templates", "template", tc.lang, "function"), filepath.Join(dir, name))
			stack := fmt.Sprintf("version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  %s:\n    lang: %s\n    handler: ./%s\n    image: faas-criu-test/%s:latest\n", name, tc.lang, name, name)
			stackFile := filepath.Join(dir, "stack.yml")
			os.WriteFile(stackFile, []byte(stack), 0o644)
			buildStack(t, stackFile)
			t.Cleanup(func() { removeImage("faas-criu-test/" + name + ":latest") })

			if out, err := p.CLI(dir, "deploy", "-f", stackFile); err != nil {
				t.Fatalf("deploy: %v\n%s", err, out)
			}
			if got := p.MustInvoke(name, ""); !strings.Contains(got, tc.want) {
				t.Errorf("%s answered %q", name, got)
			}
			if code, body := p.Invoke(name, "/_/health"); code != 200 {
				t.Errorf("%s /_/health: %d %s", name, code, body)
			}
			if code, _ := p.Invoke(name, "/_/ready"); code != 200 {
				t.Errorf("%s /_/ready: %d", name, code)
			}
			p.Delete(name)
		})
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBadStacksDeployNothing(t *testing.T) {
	p := StartProvider(t)
	good := "  ok:\n    image: " + FixtureImage + "\n"
	head := "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n" + good
	// says is the message after "FILE: ", where FILE is the stack file as
	// given: it names the function and the field (the temporary directory
	// holds the test's name, so a bare function name would prove nothing).
	cases := []struct {
		name, stack, says string
	}{
		{"memory the provider refuses", head + "  big:\n    image: " + FixtureImage + "\n    limits:\n      memory: 9e18Gi\n",
			`function "big": field "limits.memory": memory quantity "9e18Gi" is too large (line 10)`},
		{"missing image", head + "  noimage:\n    environment:\n      A: b\n",
			`function "noimage": field "image": required: every function needs an image (line 8)`},
		{"bad substitution", head + "  subst:\n    image: ${TAG\n",
			`function "subst": field "image": unterminated "${": no closing "}" on this line (line 8)`},
		{"substitution faas-cli refuses", head + "  subst:\n    image: " + FixtureImage + "\n    environment:\n      TAG: ${FAAS_CRIU_IT_UNSET_TAG?need a tag}\n",
			`function "subst": field "environment.TAG": bad substitution "${FAAS_CRIU_IT_UNSET_TAG?need a tag}": faas-cli does not take "?" without ":" (use ${FAAS_CRIU_IT_UNSET_TAG:?...}) (line 10)`},
		{"missing environment_file", head + "  envf:\n    image: " + FixtureImage + "\n    environment_file:\n      - missing.yml\n",
			`function "envf": field "environment_file[0]": open `},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "stack.yml")
			os.WriteFile(file, []byte(c.stack), 0o644)
			out, err := p.CLI(dir, "deploy", "-f", file)
			if err == nil {
				t.Fatalf("deploy succeeded:\n%s", out)
			}
			if want := file + ": " + c.says; !strings.Contains(out, want) {
				t.Errorf("message does not name the file, function and field; want it to contain\n  %s\ngot:\n%s", want, out)
			}
			if list := p.List(); len(list) != 0 {
				t.Errorf("a failed deploy left functions: %+v", list)
			}
		})
	}
	// Valid, but the provider refuses one function: the run is undone.
	t.Run("image not in the engine (rolled back)", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "stack.yml")
		os.WriteFile(file, []byte(head+"  zghost:\n    image: example.invalid/ghost:1\n"), 0o644)
		out, err := p.CLI(dir, "deploy", "-f", file)
		if err == nil {
			t.Fatalf("deploy succeeded:\n%s", out)
		}
		if !strings.Contains(out, "zghost") || !strings.Contains(out, "example.invalid/ghost:1") {
			t.Errorf("message does not name the function and its image:\n%s", out)
		}
		if list := p.List(); len(list) != 0 {
			t.Errorf("a failed deploy left functions: %+v", list)
		}
	})
}

func TestServeStackBringsDeclaredFunctionsBack(t *testing.T) {
	p := startWithPairStack(t, "north", "south")
	p.WaitAvailable("north", 1)
	p.WaitAvailable("south", 1)
	if got := p.MustInvoke("south", "/env/SIDE"); got != "south" {
		t.Errorf("south SIDE = %q", got)
	}
	counts(p, "north", 2)
	p.Scale("north", 0)

	// A restart with the same stack: the hibernated function stays so.
	p.Restart()
	if s := p.Annotation("north", stateAnnotation); s != "hibernated" {
		t.Errorf("after restart with --stack north is %s", s)
	}
	if got := counts(p, "north", 1); got[0] != 3 {
		t.Errorf("north after restart = %v, want 3", got)
	}

	// Provider, containers and state all gone (a box rebuilt): the stack
	// brings every declared function back.
	p.Kill()
	for _, c := range p.AllContainers("") {
		removeContainer(t.Context(), docker, c.ID)
	}
	entries, _ := os.ReadDir(p.StateDir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(p.StateDir, e.Name()))
	}
	p.Start()
	p.WaitAvailable("north", 1)
	p.WaitAvailable("south", 1)
	if got := p.MustInvoke("north", "/count"); got != "1" {
		t.Errorf("north after a rebuild = %q, want a fresh 1", got)
	}
	p.Delete("north")
	p.Delete("south")
}

// TestServeStackAfterContainersLost: the provider killed and every one of
// its containers removed, its state directory kept (the engine lost its
// containers): serve --stack brings every declared function back from the
// records, with their replica targets, and they answer.
func TestServeStackAfterContainersLost(t *testing.T) {
	p := startWithPairStack(t, "east", "west")
	p.WaitAvailable("west", 1)
	p.Scale("east", 2) // a target the stack does not say: only the records know it
	p.WaitAvailable("east", 2)
	counts(p, "east", 2)
	before := map[string]types.FunctionStatus{}
	for _, st := range p.List() {
		before[st.Name] = st
	}
	instance := p.InstanceID()
	old := map[string]bool{}

	p.Kill()
	for _, c := range p.AllContainers("") {
		old[c.ID] = true
		if err := removeContainer(t.Context(), docker, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	if len(old) < 6 { // 3 replicas, each a function container and a sandbox
		t.Fatalf("removed %d containers, want at least 6", len(old))
	}
	p.Start()
	if got := p.InstanceID(); got != instance {
		t.Fatalf("instance id changed from %s to %s: the state was not kept", instance, got)
	}
	p.WaitAvailable("east", 2)
	p.WaitAvailable("west", 1)
	for _, c := range p.AllContainers("") {
		if old[c.ID] {
			t.Errorf("container %s was removed but is listed again", c.ID)
		}
	}
	if got := p.MustInvoke("west", "/env/SIDE"); got != "west" {
		t.Errorf("west SIDE = %q", got)
	}
	for _, v := range counts(p, "east", 2) {
		if v != 1 {
			t.Errorf("east /count = %d: a recreated replica starts fresh, want 1", v)
		}
	}
	after := p.List()
	if len(after) != 2 {
		t.Fatalf("after the restart %d functions, want 2: %+v", len(after), after)
	}
	for _, st := range after {
		if b := before[st.Name]; !st.CreatedAt.Equal(b.CreatedAt) || st.Replicas != b.Replicas {
			t.Errorf("%s after the restart: created %s, replicas %d; before: %s, %d (the records were kept)", st.Name, st.CreatedAt, st.Replicas, b.CreatedAt, b.Replicas)
		}
	}
	p.Delete("east")
	p.Delete("west")
}

func removeImage(ref string) {
	_, _ = docker.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
}

// startWithPairStack starts a provider with --stack, a stack.yml declaring
// two fixture functions: plain, and other with environment SIDE=other.
func startWithPairStack(t *testing.T, plain, other string) *Provider {
	t.Helper()
	file := filepath.Join(t.TempDir(), "stack.yml")
	stack := "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  " + plain + ":\n    image: " + FixtureImage +
		"\n  " + other + ":\n    image: " + FixtureImage + "\n    environment:\n      SIDE: " + other + "\n"
	if err := os.WriteFile(file, []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	return StartProvider(t, "--stack", file)
}

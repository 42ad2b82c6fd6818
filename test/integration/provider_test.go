package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

func TestInfoAndAuth(t *testing.T) {
	p := StartProvider(t)

	code, body := p.Request("GET", "/system/info", nil)
	if code != 200 {
		t.Fatalf("info: %d %s", code, body)
	}
	var info struct {
		Provider      string `json:"provider"`
		Orchestration string `json:"orchestration"`
		Version       struct{ Release, SHA string }
		CRIU          struct {
			Available bool
			Version   string
		}
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	if info.Provider != "faas-criu" || info.Orchestration != "docker" || info.Version.Release == "" {
		t.Errorf("info = %+v", info)
	}
	if !info.CRIU.Available || info.CRIU.Version == "" {
		t.Errorf("CRIU not reported as available: %s", body)
	}

	for _, r := range []struct{ method, path string }{
		{"GET", "/system/info"},
		{"GET", "/system/functions"},
		{"POST", "/system/functions"},
		{"PUT", "/system/functions"},
		{"DELETE", "/system/functions"},
		{"GET", "/system/function/x"},
		{"POST", "/system/scale-function/x"},
		{"GET", "/system/secrets"},
		{"POST", "/system/secrets"},
		{"GET", "/system/logs?name=x"},
		{"GET", "/system/namespaces"},
	} {
		if code, _ := p.RequestNoAuth(r.method, r.path, nil); code != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: %d, want 401", r.method, r.path, code)
		}
	}
	for _, c := range []struct{ user, pass string }{{p.User, "not-the-password"}, {"root", p.Pass}} {
		req, _ := http.NewRequest("GET", p.URL+"/system/info", nil)
		req.SetBasicAuth(c.user, c.pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The same answer whichever part is wrong.
		if resp.StatusCode != http.StatusUnauthorized || strings.TrimSpace(string(b)) != "invalid credentials" {
			t.Errorf("user %q with a wrong part: %d %q", c.user, resp.StatusCode, b)
		}
	}
	if code, _ := p.RequestNoAuth("GET", "/healthz", nil); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := p.RequestNoAuth("GET", "/metrics", nil); code != 200 || !strings.Contains(body, "faas_criu_") {
		t.Errorf("/metrics: %d (faas_criu_ series present: %v)", code, strings.Contains(body, "faas_criu_"))
	}
	if code, body := p.Request("GET", "/system/namespaces", nil); code != 200 || !strings.Contains(body, "openfaas-fn") {
		t.Errorf("namespaces: %d %s", code, body)
	}
}

func TestFunctionLifecycle(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("lifecycle")
	dep.EnvVars = map[string]string{"GREETING": "hello"}
	p.Deploy(dep)

	if got := p.MustInvoke("lifecycle", "/count"); got != "1" {
		t.Fatalf("first count = %q", got)
	}
	list := p.List()
	if len(list) != 1 || list[0].Name != "lifecycle" || list[0].Replicas != 1 || list[0].AvailableReplicas != 1 {
		t.Fatalf("list = %+v", list)
	}
	if list[0].InvocationCount != 1 {
		t.Errorf("invocationCount = %v, want 1", list[0].InvocationCount)
	}

	// Scaled to 3: three containers, invocations spread over them.
	p.Scale("lifecycle", 3)
	p.WaitAvailable("lifecycle", 3)
	running := 0
	for _, c := range p.Containers("lifecycle") {
		if c.State == "running" {
			running++
		}
	}
	if running != 3 {
		t.Fatalf("%d running containers, want 3", running)
	}
	hosts := map[string]int{}
	for i := 0; i < 30; i++ {
		hosts[p.MustInvoke("lifecycle", "/whoami")]++
	}
	if len(hosts) < 2 {
		t.Errorf("30 invocations reached %d replica(s): %v", len(hosts), hosts)
	}

	// Updated with a new environment variable: replies show it.
	dep.EnvVars["GREETING"] = "bonjour"
	if code, body := p.Request("PUT", "/system/functions", dep); code != http.StatusAccepted {
		t.Fatalf("update: %d %s", code, body)
	}
	eventually(t, 20*time.Second, func() string {
		if code, got := p.Invoke("lifecycle", "/env/GREETING"); code != 200 || got != "bonjour" {
			return fmt.Sprintf("after update GREETING = %d %q", code, got)
		}
		return ""
	})
	if st := p.WaitAvailable("lifecycle", 3); st.EnvVars["GREETING"] != "bonjour" {
		t.Errorf("status envVars = %v", st.EnvVars)
	}

	// Deleted: no container left, invocations 404.
	p.Delete("lifecycle")
	if left := p.AllContainers("lifecycle"); len(left) != 0 {
		t.Errorf("%d containers left after delete", len(left))
	}
	if code, _ := p.Invoke("lifecycle", "/count"); code != http.StatusNotFound {
		t.Errorf("invoke after delete: %d, want 404", code)
	}
	if code, _ := p.Request("GET", "/system/function/lifecycle", nil); code != http.StatusNotFound {
		t.Errorf("status after delete: %d, want 404", code)
	}
}

func TestDeploymentFields(t *testing.T) {
	p := StartProvider(t)
	labels := map[string]string{"team": "edge", "com.openfaas.scale.min": "2"}
	annotations := map[string]string{"topic": "sensors"}
	dep := Fixture("fields")
	dep.EnvProcess = "./handler --flag"
	dep.Labels = &labels
	dep.Annotations = &annotations
	dep.Limits = &types.FunctionResources{Memory: "64Mi", CPU: "500m"}
	dep.Requests = &types.FunctionResources{Memory: "32Mi", CPU: "250m"}
	dep.ReadOnlyRootFilesystem = true
	dep.Constraints = []string{"node.platform.os == linux"}
	p.Deploy(dep)

	// com.openfaas.scale.min is honoured at deploy.
	st := p.WaitAvailable("fields", 2)
	if (*st.Labels)["team"] != "edge" || (*st.Annotations)["topic"] != "sensors" {
		t.Errorf("labels %v annotations %v", *st.Labels, *st.Annotations)
	}
	if st.EnvProcess != "./handler --flag" || st.Limits == nil || st.Limits.Memory != "64Mi" || !st.ReadOnlyRootFilesystem {
		t.Errorf("status = %+v", st)
	}
	if st.Usage == nil || st.Usage.TotalMemoryBytes <= 0 {
		t.Errorf("no memory usage reported: %+v", st.Usage)
	}
	if got := p.MustInvoke("fields", "/env/fprocess"); got != "./handler --flag" {
		t.Errorf("fprocess = %q", got)
	}
	if !strings.Contains(p.Logs(), "not supported") {
		t.Errorf("constraints were not logged as unsupported")
	}

	// The engine got the limits.
	cs := p.Containers("fields")
	if len(cs) != 2 {
		t.Fatalf("%d containers, want 2", len(cs))
	}
	ci, err := docker.ContainerInspect(context.Background(), cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	hc := ci.HostConfig
	if hc.Memory != 64<<20 || hc.MemoryReservation != 32<<20 || hc.NanoCPUs != 5e8 || hc.CPUShares != 256 || !hc.ReadonlyRootfs {
		t.Errorf("engine config: memory %d reservation %d nanocpus %d shares %d readonly %v",
			hc.Memory, hc.MemoryReservation, hc.NanoCPUs, hc.CPUShares, hc.ReadonlyRootfs)
	}
	if ci.Config.Labels["team"] != "edge" || ci.Config.Labels["com.openfaas.function"] != "fields" {
		t.Errorf("container labels = %v", ci.Config.Labels)
	}

	// Read-only root, writable /tmp.
	if got := p.MustInvoke("fields", "/write?path=/data.txt"); !strings.Contains(got, "read-only") {
		t.Errorf("write to / = %q, want a read-only error", got)
	}
	if got := p.MustInvoke("fields", "/write?path=/tmp/data.txt"); got != "ok" {
		t.Errorf("write to /tmp = %q", got)
	}
	p.Delete("fields")
}

func TestSecrets(t *testing.T) {
	p := StartProvider(t)
	mustCode := func(want int, method string, body any) {
		t.Helper()
		if code, out := p.Request(method, "/system/secrets", body); code != want {
			t.Fatalf("%s /system/secrets %v: %d %s, want %d", method, body, code, out, want)
		}
	}
	mustCode(http.StatusCreated, "POST", types.Secret{Name: "api-key", Value: "s3cret-1"})
	mustCode(http.StatusConflict, "POST", types.Secret{Name: "api-key", Value: "again"})

	code, body := p.Request("GET", "/system/secrets", nil)
	var list []types.Secret
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	if len(list) != 1 || list[0].Name != "api-key" || list[0].Value != "" || strings.Contains(body, "s3cret") {
		t.Fatalf("list = %s", body)
	}

	mustCode(http.StatusOK, "PUT", types.Secret{Name: "api-key", Value: "s3cret-2"})
	mustCode(http.StatusNotFound, "PUT", types.Secret{Name: "missing", Value: "x"})

	dep := Fixture("secretive")
	dep.Secrets = []string{"api-key"}
	p.Deploy(dep)
	if got := p.MustInvoke("secretive", "/secret/api-key"); got != "s3cret-2" {
		t.Fatalf("mounted secret = %q", got)
	}
	// An update shows inside the running function.
	mustCode(http.StatusOK, "PUT", types.Secret{Name: "api-key", Value: "s3cret-3"})
	if got := p.MustInvoke("secretive", "/secret/api-key"); got != "s3cret-3" {
		t.Errorf("secret after update = %q", got)
	}
	// Mounted read-only.
	if got := p.MustInvoke("secretive", "/write?path=/var/openfaas/secrets/api-key"); !strings.Contains(got, "read-only") {
		t.Errorf("writing the secret = %q, want a read-only error", got)
	}
	// Not deletable while used; deletable after.
	mustCode(http.StatusConflict, "DELETE", types.Secret{Name: "api-key"})
	p.Delete("secretive")
	mustCode(http.StatusOK, "DELETE", types.Secret{Name: "api-key"})
	mustCode(http.StatusNotFound, "DELETE", types.Secret{Name: "api-key"})
	if _, body := p.Request("GET", "/system/secrets", nil); strings.TrimSpace(body) != "[]" {
		t.Errorf("secrets after delete = %s", body)
	}
}

func TestLogs(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("chatty"))
	for i := 1; i <= 8; i++ {
		p.MustInvoke("chatty", fmt.Sprintf("/log?line=line-%d", i))
	}
	var msgs []struct{ Name, Instance, Text string }
	eventually(t, 5*time.Second, func() string {
		code, body := p.Request("GET", "/system/logs?name=chatty&tail=5", nil)
		if code != 200 {
			return fmt.Sprintf("logs: %d %s", code, body)
		}
		msgs = msgs[:0]
		for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
			var m struct{ Name, Instance, Text string }
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				return fmt.Sprintf("bad log line %q: %v", l, err)
			}
			msgs = append(msgs, m)
		}
		if len(msgs) != 5 || msgs[4].Text != "line-8" || msgs[0].Text != "line-4" {
			return fmt.Sprintf("tail=5 gave %+v", msgs)
		}
		return ""
	})
	if msgs[0].Name != "chatty" || msgs[0].Instance == "" {
		t.Errorf("message fields: %+v", msgs[0])
	}

	// follow=true streams new lines as they are written.
	req, _ := http.NewRequest("GET", p.URL+"/system/logs?name=chatty&follow=true&tail=1", nil)
	req.SetBasicAuth(p.User, p.Pass)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	<-lines // the tail
	p.MustInvoke("chatty", "/log?line=followed-1")
	select {
	case l := <-lines:
		if !strings.Contains(l, "followed-1") {
			t.Errorf("followed line = %s", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no line streamed within 10s")
	}
	if code, _ := p.Request("GET", "/system/logs?name=nobody", nil); code != http.StatusNotFound {
		t.Errorf("logs of an unknown function: %d, want 404", code)
	}
	p.Delete("chatty")
}

func TestProxyPassesEverything(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("echo"))

	req, _ := http.NewRequest("PUT", p.URL+"/function/echo.openfaas-fn/echo/sub?x=1&y=a%20b", strings.NewReader("payload"))
	req.Header.Set("X-Test", "yes")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var echo struct {
		Method, Path, Query, Body string
		Headers                   map[string][]string
	}
	json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if resp.StatusCode != 200 || echo.Method != "PUT" || echo.Path != "/echo/sub" || echo.Query != "x=1&y=a%20b" ||
		echo.Body != "payload" || echo.Headers["X-Test"][0] != "yes" || len(echo.Headers["X-Forwarded-For"]) == 0 {
		t.Errorf("echo = %d %+v", resp.StatusCode, echo)
	}

	// A large body goes through both ways.
	big := strings.Repeat("0123456789", 500_000)
	code, out := p.InvokeWith("POST", "echo", "/echo", strings.NewReader(big))
	if code != 200 || !strings.Contains(out, big) {
		t.Errorf("5 MB echo: %d, %d bytes back", code, len(out))
	}

	// A streamed response arrives as it is written.
	start := time.Now()
	resp, err = http.Get(p.URL + "/function/echo/stream?n=4&ms=300")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := bufio.NewReader(resp.Body).ReadString('\n')
	firstAt := time.Since(start)
	rest := new(strings.Builder)
	bufio.NewReader(resp.Body).WriteTo(rest)
	resp.Body.Close()
	if first != "line 1\n" || firstAt > 600*time.Millisecond {
		t.Errorf("first streamed line %q after %s", first, firstAt)
	}
	if total := time.Since(start); total < 900*time.Millisecond {
		t.Errorf("stream finished in %s; the test expects about 1.2s", total)
	}
	p.Delete("echo")
}

func TestBadInput(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("keeper"))
	p.MustInvoke("keeper", "/count")
	if code, body := p.Request("POST", "/system/secrets", types.Secret{Name: "ok-secret", Value: "v"}); code != 201 {
		t.Fatalf("secret: %d %s", code, body)
	}

	cases := []struct {
		name         string
		method, path string
		body         any
		want         int
		says         string
	}{
		{"malformed JSON", "POST", "/system/functions", `{"service": "x",`, 400, "malformed JSON"},
		{"empty body", "POST", "/system/functions", "", 400, "empty"},
		{"missing image", "POST", "/system/functions", types.FunctionDeployment{Service: "noimage"}, 400, "image is required"},
		{"missing name", "POST", "/system/functions", types.FunctionDeployment{Image: FixtureImage}, 400, "name is required"},
		{"invalid name", "POST", "/system/functions", types.FunctionDeployment{Service: "Bad_Name", Image: FixtureImage}, 400, "invalid function name"},
		{"image not present", "POST", "/system/functions", types.FunctionDeployment{Service: "ghost", Image: "example.invalid/ghost:1"}, 400, "not present in the local Docker engine"},
		{"secret with path characters", "POST", "/system/functions", types.FunctionDeployment{Service: "sneaky", Image: FixtureImage, Secrets: []string{"../../etc/passwd"}}, 400, "invalid secret name"},
		{"unknown secret", "POST", "/system/functions", types.FunctionDeployment{Service: "nosecret", Image: FixtureImage, Secrets: []string{"missing"}}, 400, "does not exist"},
		{"bad memory limit", "POST", "/system/functions", types.FunctionDeployment{Service: "badmem", Image: FixtureImage, Limits: &types.FunctionResources{Memory: "lots"}}, 400, "limits.memory"},
		{"bad scale.min", "POST", "/system/functions", types.FunctionDeployment{Service: "badmin", Image: FixtureImage, Labels: &map[string]string{"com.openfaas.scale.min": "many"}}, 400, "com.openfaas.scale.min"},
		{"deploy over existing", "POST", "/system/functions", Fixture("keeper"), 409, "already exists"},
		{"update of missing", "PUT", "/system/functions", Fixture("absent"), 404, "not found"},
		{"status of unknown", "GET", "/system/function/absent", nil, 404, "not found"},
		{"scale unknown", "POST", "/system/scale-function/absent", types.ScaleServiceRequest{ServiceName: "absent", Replicas: 1}, 404, "not found"},
		{"scale malformed", "POST", "/system/scale-function/keeper", `{"replicas": -1}`, 400, "malformed JSON"},
		{"delete unknown", "DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: "absent"}, 404, "not found"},
		{"delete without name", "DELETE", "/system/functions", `{}`, 400, "functionName is required"},
		{"unknown namespace", "GET", "/system/functions?namespace=elsewhere", nil, 400, "not enabled"},
		{"secret name with slash", "POST", "/system/secrets", types.Secret{Name: "a/b", Value: "x"}, 400, "invalid secret name"},
		{"secret name dot-dot", "POST", "/system/secrets", types.Secret{Name: "..", Value: "x"}, 400, "invalid secret name"},
		{"oversize body", "POST", "/system/secrets", types.Secret{Name: "huge", Value: strings.Repeat("x", 3<<20)}, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			code, body := p.Request(c.method, c.path, c.body)
			if code != c.want || !strings.Contains(body, c.says) {
				t.Errorf("%d %q, want %d containing %q", code, body, c.want, c.says)
			}
			if strings.Count(strings.TrimSpace(body), "\n") > 0 {
				t.Errorf("reason is not one line: %q", body)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("answered after %s", d)
			}
		})
	}
	if code, _ := p.Invoke("absent", "/"); code != http.StatusNotFound {
		t.Errorf("invoke of unknown function: %d", code)
	}
	// The existing function kept running, with its state.
	if got := p.MustInvoke("keeper", "/count"); got != "2" {
		t.Errorf("keeper count = %q after the bad requests, want 2", got)
	}
	if len(p.List()) != 1 {
		t.Errorf("bad requests left functions behind: %+v", p.List())
	}
	p.Delete("keeper")
}

func TestRestartForgetsNothing(t *testing.T) {
	p := StartProvider(t)
	if code, body := p.Request("POST", "/system/secrets", types.Secret{Name: "token", Value: "t0k3n"}); code != 201 {
		t.Fatalf("secret: %d %s", code, body)
	}
	a := Fixture("alpha")
	a.EnvVars = map[string]string{"COLOUR": "blue"}
	a.Labels = &map[string]string{"tier": "gold"}
	a.Secrets = []string{"token"}
	p.Deploy(a)
	p.Deploy(Fixture("beta"))
	p.Scale("beta", 2)
	p.WaitAvailable("beta", 2)
	p.WaitAvailable("alpha", 1)
	for i := 0; i < 3; i++ {
		p.MustInvoke("alpha", "/count")
	}
	before := p.List()
	time.Sleep(2500 * time.Millisecond) // let the invocation count reach disk

	p.Restart() // SIGKILL, then start on the same state

	after := p.List()
	if len(after) != len(before) {
		t.Fatalf("after restart %d functions, before %d", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Name != b.Name || a.Replicas != b.Replicas || a.Image != b.Image ||
			fmt.Sprint(a.EnvVars) != fmt.Sprint(b.EnvVars) || fmt.Sprint(a.Secrets) != fmt.Sprint(b.Secrets) ||
			fmt.Sprint(a.Labels) != fmt.Sprint(b.Labels) || !a.CreatedAt.Equal(b.CreatedAt) || a.InvocationCount != b.InvocationCount {
			t.Errorf("after restart:\n%+v\nbefore:\n%+v", a, b)
		}
	}
	p.WaitAvailable("beta", 2)
	// The containers kept running: state continues.
	if got := p.MustInvoke("alpha", "/count"); got != "4" {
		t.Errorf("alpha count after restart = %q, want 4", got)
	}
	if got := p.MustInvoke("alpha", "/secret/token"); got != "t0k3n" {
		t.Errorf("secret after restart = %q", got)
	}
	if code, body := p.Request("GET", "/system/secrets", nil); code != 200 || !strings.Contains(body, "token") {
		t.Errorf("secrets after restart: %d %s", code, body)
	}
	p.Delete("alpha")
	p.Delete("beta")
}

//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

func TestInfoAndAuth(t *testing.T) {
	p := StartProvider(t)

	// A gateway in front gets faas-provider's ProviderInfo: the OpenFaaS
	// gateway forwards /system/info with X-Forwarded-For set.
	req, _ := http.NewRequest("GET", p.URL+"/system/info", nil)
	req.SetBasicAuth(p.User, p.Pass)
	req.Header.Set("X-Forwarded-For", "127.0.0.1:5000")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code, body := resp.StatusCode, string(raw)
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
	// The version is what the binary was built with, as its build
	// information records it.
	if info.Version.Release != providerVersion || info.Version.SHA != providerCommit {
		t.Errorf("info version = %q %q, want %q %q (what the binary was built with)", info.Version.Release, info.Version.SHA, providerVersion, providerCommit)
	}
	// faas-cli straight at faas-criu gets the gateway's shape.
	code, body = p.Request("GET", "/system/info", nil)
	var gw struct {
		Provider *types.ProviderInfo `json:"provider"`
		Version  *types.VersionInfo  `json:"version"`
		Arch     string              `json:"arch"`
	}
	if err := json.Unmarshal([]byte(body), &gw); err != nil || code != 200 {
		t.Fatalf("gateway-shaped info: %d %s: %v", code, body, err)
	}
	if gw.Provider == nil || gw.Provider.Name != "faas-criu" || gw.Provider.Version.SHA != providerCommit || gw.Version.Release != providerVersion {
		t.Errorf("gateway-shaped info = %s", body)
	}

	// Every route under /system answers 401 without credentials and with a
	// wrong password, before it looks at the request.
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
		{"PUT", "/system/secrets"},
		{"DELETE", "/system/secrets"},
		{"GET", "/system/logs?name=x"},
		{"GET", "/system/namespaces"},
		{"POST", "/system/migrate"},
		{"GET", "/system/import/image?id=sha256:0"},
		{"POST", "/system/import/image"},
		{"POST", "/system/import"},
		{"GET", "/system/backups/x"},
		{"POST", "/system/backups/x/restore"},
	} {
		if code, _ := p.RequestNoAuth(r.method, r.path, nil); code != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: %d, want 401", r.method, r.path, code)
		}
		req, _ := http.NewRequest(r.method, p.URL+r.path, nil)
		req.SetBasicAuth(p.User, "not-the-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s with a wrong password: %d, want 401", r.method, r.path, resp.StatusCode)
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
	if running := p.Running("lifecycle"); running != 3 {
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

// What the OpenFaaS conformance cases deploy and expect (issue 11, faults 4
// and 5): a memory limit below Docker's 6 MiB minimum is accepted, runs with
// the minimum and is reported as asked; the status labels the function
// faas_function: NAME, and putting that label back changes nothing.
func TestConformanceLimitsAndLabel(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("tiny")
	dep.Limits = &types.FunctionResources{Memory: "5Mi", CPU: "100m"}
	dep.Labels = &map[string]string{"team": "edge"}
	if code, body := p.Request("POST", "/system/functions", dep); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("deploy with limits.memory 5Mi: %d %s", code, body)
	}
	st := p.WaitAvailable("tiny", 1)
	if st.Limits == nil || st.Limits.Memory != "5Mi" || st.Limits.CPU != "100m" {
		t.Errorf("status limits = %+v, want the 5Mi/100m asked for", st.Limits)
	}
	if st.Labels == nil || (*st.Labels)["faas_function"] != "tiny" || (*st.Labels)["team"] != "edge" {
		t.Errorf("status labels = %v, want faas_function: tiny and team: edge", st.Labels)
	}
	cs := p.Containers("tiny")
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	ci, err := docker.ContainerInspect(context.Background(), cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if ci.HostConfig.Memory != 6<<20 || ci.HostConfig.NanoCPUs != 1e8 {
		t.Errorf("engine memory %d nanocpus %d, want Docker's minimum 6Mi and 0.1 CPU", ci.HostConfig.Memory, ci.HostConfig.NanoCPUs)
	}
	if got := p.MustInvoke("tiny", "/count"); got == "" {
		t.Error("the function under 6Mi answered nothing")
	}

	// The status's labels put back: the same deployment, the same container.
	dep.Labels = st.Labels
	if code, body := p.Request("PUT", "/system/functions", dep); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("update with the status labels: %d %s", code, body)
	}
	if after := p.Containers("tiny"); len(after) != 1 || after[0].ID != cs[0].ID {
		t.Errorf("putting faas_function back replaced the container")
	}
	p.Delete("tiny")
}

// /metrics carries the OpenFaaS gateway's series for invoked functions,
// named and labelled as the gateway does (issue 11), so dashboards and
// alert rules work with no gateway.
func TestGatewayMetrics(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("gm"))
	p.WaitAvailable("gm", 1)
	p.MustInvoke("gm", "/count")
	p.MustInvoke("gm.openfaas-fn", "/count") // the same function, namespace given
	if code, _ := p.Invoke("gm", "/code?c=418"); code != 418 {
		t.Fatalf("fixture /code?c=418: %d", code)
	}
	p.Invoke("nosuchfn", "/")
	p.Invoke("Bad_Name", "/")
	checks := map[string]float64{
		`gateway_function_invocation_total{code="200",function_name="gm.openfaas-fn"}`: 2,
		`gateway_function_invocation_total{code="418",function_name="gm.openfaas-fn"}`: 1,
		`gateway_function_invocation_started{function_name="gm.openfaas-fn"}`:          3,
		`gateway_functions_seconds_count{code="200",function_name="gm.openfaas-fn"}`:   2,
		`gateway_service_count{function_name="gm.openfaas-fn"}`:                        1,
		// An unknown function makes no series.
		`gateway_function_invocation_total{code="404",function_name="nosuchfn.openfaas-fn"}`: 0,
		`gateway_function_invocation_total{code="400",function_name="Bad_Name.openfaas-fn"}`: 0,
	}
	for series, want := range checks {
		if got := p.Metric(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if _, body := p.RequestNoAuth("GET", "/metrics", nil); !strings.Contains(body, `gateway_functions_seconds_bucket{code="200",function_name="gm.openfaas-fn",le="0.005"}`) {
		t.Errorf("no gateway_functions_seconds histogram buckets on /metrics")
	}
	p.Delete("gm")
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

	// since= returns only the lines written after that time.
	time.Sleep(1100 * time.Millisecond)
	mark := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	p.MustInvoke("chatty", "/log?line=late-1")
	p.MustInvoke("chatty", "/log?line=late-2")
	eventually(t, 5*time.Second, func() string {
		code, body := p.Request("GET", "/system/logs?name=chatty&since="+url.QueryEscape(mark.Format(time.RFC3339Nano)), nil)
		if code != 200 {
			return fmt.Sprintf("logs since: %d %s", code, body)
		}
		var texts []string
		for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
			var m struct{ Text string }
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				return fmt.Sprintf("bad log line %q: %v", l, err)
			}
			texts = append(texts, m.Text)
		}
		if !slices.Equal(texts, []string{"late-1", "late-2"}) {
			return fmt.Sprintf("since %s gave %q, want the two late lines", mark.Format(time.RFC3339Nano), texts)
		}
		return ""
	})

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

// A log line over 64 KiB neither ends the replica's log stream nor is lost
// (issue 11, fault 7).
func TestLogsLongLine(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("longlog"))
	const size = 100 << 10
	p.MustInvoke("longlog", fmt.Sprintf("/logbig?bytes=%d", size))
	p.MustInvoke("longlog", "/log?line=after-the-long-one")
	eventually(t, 5*time.Second, func() string {
		code, body := p.Request("GET", "/system/logs?name=longlog", nil)
		if code != 200 {
			return fmt.Sprintf("logs: %d %.200s", code, body)
		}
		xs, last := 0, ""
		for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
			var m struct{ Text string }
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				return fmt.Sprintf("bad log line %.200q: %v", l, err)
			}
			// Docker cuts the line into 16 KiB entries, each with its own
			// timestamp: the pieces must carry the line alone, whole.
			if strings.HasPrefix(m.Text, "xxx") {
				if strings.Trim(m.Text, "x") != "" {
					return fmt.Sprintf("a piece of the long line carries more than it: %.80q", strings.Trim(m.Text, "x"))
				}
				xs += len(m.Text)
			}
			last = m.Text
		}
		if last != "after-the-long-one" || xs != size {
			return fmt.Sprintf("logs end with %.80q and carry %d of the long line's %d bytes", last, xs, size)
		}
		return ""
	})
	p.Delete("longlog")
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

// TestAvailableReplicasWaitForHealthCheck: a replica counts as available
// only once it answers its health check, and requests wait for it.
func TestAvailableReplicasWaitForHealthCheck(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("slowstart")
	dep.EnvVars = map[string]string{"INIT_DELAY": "3s"} // listens 3 s after it starts
	p.Deploy(dep)

	// The deploy answers once the container runs; the fixture is still
	// asleep before listening.
	if st := p.Status("slowstart"); st.Replicas != 1 || st.AvailableReplicas != 0 {
		t.Fatalf("right after the deploy: replicas %d, availableReplicas %d; want 1 and 0", st.Replicas, st.AvailableReplicas)
	}
	// A request meanwhile waits for the replica rather than failing.
	if code, body := p.Invoke("slowstart", "/count"); code != http.StatusOK || body != "1" {
		t.Errorf("invoke during the slow start: %d %q, want 200 \"1\"", code, body)
	}
	p.WaitAvailable("slowstart", 1)
	p.Delete("slowstart")
}

// TestHealthPathAnnotation: com.openfaas.ready.http.path, else
// com.openfaas.health.http.path, names the path probed; a replica counts
// when it answers 200-399 (as a Kubernetes probe), never on a 404 or no
// answer.
func TestHealthPathAnnotation(t *testing.T) {
	p := StartProvider(t, "--ready-timeout", "2s", "--wake-timeout", "5s")
	withPaths := func(name string, ann map[string]string) {
		t.Helper()
		dep := Fixture(name)
		dep.Annotations = &ann
		p.Deploy(dep)
	}
	probedAt := func(name, line string) {
		t.Helper()
		eventually(t, 10*time.Second, func() string {
			code, body := p.Request("GET", "/system/logs?name="+name+"&tail=20", nil)
			if code != 200 || !strings.Contains(body, line) {
				return fmt.Sprintf("the function's log has no probe of the annotated path: %d %s", code, body)
			}
			return ""
		})
	}

	// A path the fixture serves (and logs): the replica becomes available,
	// and its log shows the probe went there, not to /_/health.
	withPaths("probed", map[string]string{"com.openfaas.health.http.path": "/log?line=probed-by-health-check"})
	p.WaitAvailable("probed", 1)
	probedAt("probed", "probed-by-health-check")

	// The readiness path wins over the health path (which would never
	// answer here).
	withPaths("readypath", map[string]string{
		"com.openfaas.ready.http.path":  "/log?line=probed-by-ready-check",
		"com.openfaas.health.http.path": "/sleep?ms=600000",
	})
	p.WaitAvailable("readypath", 1)
	probedAt("readypath", "probed-by-ready-check")

	// A path the fixture answers 404 on: not ready (a 404 once counted),
	// and a 404 on the ready path is not saved by a good health path.
	withPaths("notfound", map[string]string{"com.openfaas.health.http.path": "/secret/absent"})
	withPaths("notready", map[string]string{
		"com.openfaas.ready.http.path":  "/secret/absent",
		"com.openfaas.health.http.path": "/_/health",
	})
	if code, _ := p.Invoke("notfound", "/secret/absent"); code != http.StatusGatewayTimeout {
		t.Errorf("invoke of a function whose probe answers 404: %d, want 504 (never ready)", code)
	}

	// A path that never answers within the probe's time: the replica runs
	// but never counts, past --ready-timeout, and requests are not sent to
	// it: they time out (504) after --wake-timeout.
	withPaths("mute", map[string]string{"com.openfaas.health.http.path": "/sleep?ms=600000"})
	deadline := time.Now().Add(5 * time.Second) // 2.5 times --ready-timeout
	for time.Now().Before(deadline) {
		for _, name := range []string{"mute", "notfound", "notready"} {
			if st := p.Status(name); st.Replicas != 1 || st.AvailableReplicas != 0 {
				t.Fatalf("%s (never ready): replicas %d, availableReplicas %d; want 1 and 0", name, st.Replicas, st.AvailableReplicas)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if running := p.Running("mute"); running != 1 {
		t.Errorf("%d running containers of the unhealthy function, want 1", running)
	}
	if code, body := p.Invoke("mute", "/count"); code != http.StatusGatewayTimeout {
		t.Errorf("invoke of a function that never passes its health check: %d %q, want 504", code, body)
	}
	for _, name := range []string{"probed", "readypath", "notfound", "notready", "mute"} {
		p.Delete(name)
	}
}

// TestNamespaces: with --namespaces, a function lives in its namespace:
// invoked as NAME.NAMESPACE, listed and deleted there, apart from a function
// of the same name in openfaas-fn.
func TestNamespaces(t *testing.T) {
	p := StartProvider(t, "--namespaces", "openfaas-fn,team-a")
	if code, body := p.Request("GET", "/system/namespaces", nil); code != 200 || !strings.Contains(body, `"team-a"`) || !strings.Contains(body, `"openfaas-fn"`) {
		t.Fatalf("namespaces: %d %s", code, body)
	}

	dep := Fixture("shared")
	dep.Namespace = "team-a"
	dep.EnvVars = map[string]string{"TEAM": "a"}
	p.Deploy(dep)
	if got := p.MustInvoke("shared.team-a", "/env/TEAM"); got != "a" {
		t.Errorf("shared.team-a TEAM = %q", got)
	}
	if code, _ := p.Invoke("shared", "/count"); code != http.StatusNotFound {
		t.Errorf("/function/shared (openfaas-fn) before it exists there: %d, want 404", code)
	}

	list := func(ns string) []types.FunctionStatus {
		t.Helper()
		code, body := p.Request("GET", "/system/functions?namespace="+ns, nil)
		var l []types.FunctionStatus
		if code != 200 || json.Unmarshal([]byte(body), &l) != nil {
			t.Fatalf("list %s: %d %s", ns, code, body)
		}
		return l
	}
	if l := list("team-a"); len(l) != 1 || l[0].Name != "shared" || l[0].Namespace != "team-a" {
		t.Errorf("list team-a = %+v", l)
	}
	if l := list("openfaas-fn"); len(l) != 0 {
		t.Errorf("list openfaas-fn shows team-a's function: %+v", l)
	}
	if l := p.List(); len(l) != 0 {
		t.Errorf("list without a namespace shows team-a's function: %+v", l)
	}
	if code, body := p.Request("GET", "/system/function/shared?namespace=team-a", nil); code != 200 || !strings.Contains(body, `"team-a"`) {
		t.Errorf("status in team-a: %d %s", code, body)
	}
	if code, _ := p.Request("GET", "/system/function/shared", nil); code != http.StatusNotFound {
		t.Errorf("status in openfaas-fn: %d, want 404", code)
	}
	for _, c := range p.Containers("shared") {
		if len(c.Names) == 0 || !strings.HasSuffix(c.Names[0], "."+"shared.team-a.0") {
			t.Errorf("container name %v, want NETWORK.shared.team-a.0", c.Names)
		}
	}

	// The same name in openfaas-fn is another function.
	p.Deploy(Fixture("shared"))
	counts(p, "shared", 2)
	if got := p.MustInvoke("shared.team-a", "/count"); got != "1" {
		t.Errorf("shared.team-a count = %q after two calls of openfaas-fn's shared, want 1", got)
	}
	if l := list("openfaas-fn"); len(l) != 1 || l[0].Namespace != "openfaas-fn" {
		t.Errorf("list openfaas-fn = %+v", l)
	}

	// A namespace that is not enabled is refused.
	other := Fixture("elsewhere")
	other.Namespace = "team-b"
	if code, body := p.Request("POST", "/system/functions", other); code != http.StatusBadRequest || !strings.Contains(body, "not enabled") {
		t.Errorf("deploy into team-b: %d %s, want 400 not enabled", code, body)
	}

	// Deleted in team-a: gone from there, openfaas-fn's untouched.
	if code, body := p.Request("DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: "shared", Namespace: "team-a"}); code != http.StatusAccepted {
		t.Fatalf("delete in team-a: %d %s", code, body)
	}
	if l := list("team-a"); len(l) != 0 {
		t.Errorf("list team-a after delete = %+v", l)
	}
	if code, _ := p.Invoke("shared.team-a", "/count"); code != http.StatusNotFound {
		t.Errorf("invoke shared.team-a after delete: %d, want 404", code)
	}
	if got := p.MustInvoke("shared", "/count"); got != "3" {
		t.Errorf("openfaas-fn's shared after team-a's was deleted: count %q, want 3", got)
	}
	p.Delete("shared")
	if left := p.AllContainers("shared"); len(left) != 0 {
		t.Errorf("%d containers left", len(left))
	}
}

// startProviderFromEnv starts a provider configured through OpenFaaS's
// environment variables: no --port (env port) and whatever env sets. The
// harness's Start reads the credentials from STATE/credentials, so decoy
// credentials are written there first (user admin, password "decoy"): a
// provider told to look elsewhere, or not at all, must not accept them.
func startProviderFromEnv(t *testing.T, env ...string) *Provider {
	t.Helper()
	p := newProvider(t)
	p.args = append(p.args, "--reconcile-every", "2s", "--autoscale=false")
	p.env = append([]string{fmt.Sprintf("port=%d", p.port)}, env...)
	creds := filepath.Join(p.StateDir, "credentials")
	if err := os.MkdirAll(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"basic-auth-user": "admin", "basic-auth-password": "decoy"} {
		if err := os.WriteFile(filepath.Join(creds, f), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(p.cleanup)
	p.Start() // waits for /healthz on the port given by env
	return p
}

// TestConfigurationFromEnvironment: the provider takes port, basic_auth,
// write_timeout and secret_mount_path from the environment, as OpenFaaS
// providers do.
func TestConfigurationFromEnvironment(t *testing.T) {
	t.Run("basic_auth=false write_timeout=6s", func(t *testing.T) {
		// 6 s: time for a deploy, which the write timeout bounds too.
		p := startProviderFromEnv(t, "basic_auth=false", "write_timeout=6s")
		if code, body := p.RequestNoAuth("GET", "/system/info", nil); code != 200 || !strings.Contains(body, "faas-criu") {
			t.Errorf("/system/info without credentials, basic_auth=false: %d %s", code, body)
		}
		if code, body := p.RequestNoAuth("POST", "/system/functions", Fixture("envcfg")); code != http.StatusAccepted {
			t.Fatalf("deploy without credentials, basic_auth=false: %d %s", code, body)
		}
		if got := p.MustInvoke("envcfg", "/sleep?ms=100"); got != "slept 100" {
			t.Errorf("a call within write_timeout: %q", got)
		}
		// README: a function call is cut at the write timeout. The fixture
		// answers after 9 s; the caller must not get that answer.
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Get(p.URL + "/function/envcfg/sleep?ms=9000")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "slept 9000") {
				t.Errorf("a call longer than write_timeout=6s was not cut: %d %q", resp.StatusCode, b)
			} else if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("a call longer than write_timeout=6s: %d %q, want the connection cut, 502 or 504", resp.StatusCode, b)
			}
		} else {
			t.Logf("the call longer than write_timeout was cut: %v", err)
		}
		if code, body := p.RequestNoAuth("DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: "envcfg"}); code != http.StatusAccepted {
			t.Errorf("delete without credentials: %d %s", code, body)
		}
	})

	t.Run("secret_mount_path", func(t *testing.T) {
		mount := t.TempDir()
		os.WriteFile(filepath.Join(mount, "basic-auth-user"), []byte("edge-admin"), 0o600)
		os.WriteFile(filepath.Join(mount, "basic-auth-password"), []byte("from-the-mount-path"), 0o600)
		p := startProviderFromEnv(t, "secret_mount_path="+mount)
		if code, _ := p.RequestNoAuth("GET", "/system/info", nil); code != http.StatusUnauthorized {
			t.Errorf("/system/info without credentials: %d, want 401", code)
		}
		// The decoy in STATE/credentials is not what guards the provider.
		if code, _ := p.Request("GET", "/system/info", nil); code != http.StatusUnauthorized {
			t.Errorf("/system/info with STATE/credentials' decoy: %d, want 401", code)
		}
		p.User, p.Pass = "edge-admin", "from-the-mount-path"
		if code, body := p.Request("GET", "/system/info", nil); code != 200 {
			t.Errorf("/system/info with the credentials in secret_mount_path: %d %s", code, body)
		}
	})
}

package handlers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/logs"
	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// The fuzz targets below drive each handler that takes a JSON body with
// fuzzed bytes and in-memory fakes. On every input: no panic; a body the
// handler refuses answers 400 or 413 (never 5xx) and reaches no fake; a
// body over MaxBodyBytes never succeeds; and when a fake is called, it is
// called once, with what json.Unmarshal makes of the same body, and that
// value survives re-encoding.

// Padding modes: how a fuzzed body is pushed over MaxBodyBytes.
const (
	padNone     = iota
	padLeading  // whitespace before the JSON: always 413
	padTrailing // whitespace after the JSON: 400 or 413, never a success
	padModes
)

var padding = bytes.Repeat([]byte{' '}, MaxBodyBytes+1)

// fuzzRequest builds a request whose body is data, padded as mode says.
func fuzzRequest(method, target string, data []byte, mode uint8) *http.Request {
	var body io.Reader = bytes.NewReader(data)
	switch mode % padModes {
	case padLeading:
		body = io.MultiReader(bytes.NewReader(padding), body)
	case padTrailing:
		body = io.MultiReader(body, bytes.NewReader(padding))
	}
	return httptest.NewRequest(method, target, body)
}

// checkRefused checks the answer to a body the handler did not pass on.
func checkRefused(t *testing.T, w *httptest.ResponseRecorder, mode uint8) {
	t.Helper()
	switch {
	case mode%padModes == padLeading && w.Code != http.StatusRequestEntityTooLarge:
		t.Fatalf("body over MaxBodyBytes: %d %q, want 413", w.Code, w.Body.String())
	case w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge:
		t.Fatalf("refused body: %d %q, want 400 or 413", w.Code, w.Body.String())
	case strings.TrimSpace(w.Body.String()) == "":
		t.Fatalf("%d without a message", w.Code)
	}
}

// checkPassed checks a body that reached the fake: the answer is the
// success code, the body is what json.Unmarshal makes of it, and it was
// not padded over the limit. want receives the body's own decoding, after
// fix (the handler's defaults) if any.
func checkPassed[T any](t *testing.T, w *httptest.ResponseRecorder, code int, mode uint8, data []byte, got T, fix func(*T)) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("accepted body answered %d %q, want %d", w.Code, w.Body.String(), code)
	}
	if mode%padModes != padNone {
		t.Fatalf("a body over MaxBodyBytes (%d+%d bytes) was accepted", len(data), len(padding))
	}
	var want T
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("accepted a body json.Unmarshal refuses: %v", err)
	}
	if fix != nil {
		fix(&want)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("handler passed on %+v, the body decodes to %+v", got, want)
	}
	b1, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	b2 := reencode[T](t, b1)
	if !bytes.Equal(b1, b2) {
		// Only invalid UTF-8 (from the query, which is not JSON) may
		// change, once: it is encoded as U+FFFD.
		if b3 := reencode[T](t, b2); !bytes.Contains(b1, []byte(`\ufffd`)) || !bytes.Equal(b2, b3) {
			t.Fatalf("re-encoding is not stable: %s then %s", b1, b2)
		}
	}
}

// reencode decodes b as a T and encodes it again.
func reencode[T any](t *testing.T, b []byte) []byte {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode re-encoded %s: %v", b, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	return out
}

// setQuery sets one query parameter, if v is not empty.
func setQuery(r *http.Request, k, v string) {
	if v != "" {
		r.URL.RawQuery = url.Values{k: {v}}.Encode()
	}
}

// fakeFunctions records what the function handlers pass on.
type fakeFunctions struct {
	calls    int
	dep      types.FunctionDeployment
	ns, name string
	replicas int
}

func (f *fakeFunctions) Deploy(ctx context.Context, dep types.FunctionDeployment) error {
	f.calls++
	f.dep = dep
	return nil
}

func (f *fakeFunctions) Update(ctx context.Context, dep types.FunctionDeployment) error {
	return f.Deploy(ctx, dep)
}

func (f *fakeFunctions) Delete(ctx context.Context, ns, name string) error {
	f.calls++
	f.ns, f.name = ns, name
	return nil
}

func (f *fakeFunctions) List(ctx context.Context, ns string) ([]types.FunctionStatus, error) {
	return nil, nil
}

func (f *fakeFunctions) Status(ctx context.Context, ns, name string) (types.FunctionStatus, error) {
	return types.FunctionStatus{Name: name, Namespace: ns}, nil
}

func (f *fakeFunctions) Scale(ctx context.Context, ns, name string, replicas int) error {
	f.calls++
	f.ns, f.name, f.replicas = ns, name, replicas
	return nil
}

// Bodies every JSON target starts from, besides its own. "{}}" and "{}]"
// (and any body with padTrailing) were accepted before decodeJSON checked
// for the end of the body with dec.Token instead of dec.More.
var commonBodies = []string{
	``, ` `, `null`, `{}`, `[]`, `"x"`, `0`, `{"a":1}{"b":2}`, `{} x`, `{}}`, `{}]`, `{`, `}`, `{"service":`,
	"\xff\xfe", `{"service":"\ud800"}`, `{"service":"é\u0000"}`, `[{"service":"a"}]`,
	`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
}

// FuzzDeployFunction fuzzes the FunctionDeployment body of POST and PUT
// /system/functions.
func FuzzDeployFunction(f *testing.F) {
	for _, b := range append(commonBodies,
		`{"service":"hello","image":"docker.io/functions/hello:latest"}`,
		`{"service":"a","image":"x","namespace":"dev","envProcess":"cat","envVars":{"A":"1","":""},"constraints":["c"],"secrets":["s"],"labels":{"k":"v"},"annotations":{},"limits":{"memory":"128Mi","cpu":"0.5","nvidia.com/gpu":"1"},"requests":null,"readOnlyRootFilesystem":true}`,
		`{"service":1}`, `{"labels":null,"envVars":null,"limits":{}}`, `{"SERVICE":"a","Service":"b","service":"c"}`,
		`{"readOnlyRootFilesystem":"yes"}`, `{"secrets":[1,2]}`, `{"service":"a","extra":{"nested":[1,{"x":null}]}}`,
	) {
		f.Add([]byte(b), false, uint8(padNone))
	}
	f.Add([]byte(`{"service":"a","image":"x"}`), true, uint8(padLeading))
	f.Add([]byte(`{"service":"a","image":"x"}`), false, uint8(padTrailing))
	f.Fuzz(func(t *testing.T, data []byte, put bool, mode uint8) {
		fake := &fakeFunctions{}
		h, method := DeployFunction(fake), http.MethodPost
		if put {
			h, method = UpdateFunction(fake), http.MethodPut
		}
		w := httptest.NewRecorder()
		h(w, fuzzRequest(method, "/system/functions", data, mode))
		switch fake.calls {
		case 0:
			checkRefused(t, w, mode)
		case 1:
			checkPassed(t, w, http.StatusAccepted, mode, data, fake.dep, nil)
		default:
			t.Fatalf("the provider was called %d times", fake.calls)
		}
	})
}

// FuzzDeleteFunction fuzzes the DeleteFunctionRequest body of DELETE
// /system/functions, with a namespace in the query.
func FuzzDeleteFunction(f *testing.F) {
	for _, b := range append(commonBodies,
		`{"functionName":"hello"}`, `{"functionName":"hello","namespace":"dev"}`, `{"functionName":""}`,
		`{"functionName":null,"namespace":"x"}`, `{"functionName":["a"]}`, `{"functionName":"../../etc"}`,
	) {
		f.Add([]byte(b), "", uint8(padNone))
	}
	f.Add([]byte(`{"functionName":"hello"}`), "openfaas-fn", uint8(padNone))
	f.Add([]byte(`{"functionName":"hello"}`), "", uint8(padLeading))
	f.Add([]byte(`{"functionName":"hello"}`), "", uint8(padTrailing))
	f.Fuzz(func(t *testing.T, data []byte, queryNS string, mode uint8) {
		fake := &fakeFunctions{}
		r := fuzzRequest(http.MethodDelete, "/system/functions", data, mode)
		setQuery(r, "namespace", queryNS)
		w := httptest.NewRecorder()
		DeleteFunction(fake)(w, r)
		switch fake.calls {
		case 0:
			checkRefused(t, w, mode)
		case 1:
			got := types.DeleteFunctionRequest{FunctionName: fake.name, Namespace: fake.ns}
			checkPassed(t, w, http.StatusAccepted, mode, data, got, func(want *types.DeleteFunctionRequest) {
				if want.Namespace == "" {
					want.Namespace = queryNS
				}
			})
			if fake.name == "" {
				t.Fatal("deleted a function without a name")
			}
		default:
			t.Fatalf("the provider was called %d times", fake.calls)
		}
	})
}

// FuzzScaleFunction fuzzes the ScaleServiceRequest body of POST
// /system/scale-function/{name}, with the name in the path and a namespace
// in the query.
func FuzzScaleFunction(f *testing.F) {
	for _, b := range append(commonBodies,
		`{"serviceName":"hello","replicas":2}`, `{"serviceName":"hello","replicas":0,"namespace":"dev"}`,
		`{"replicas":1000}`, `{"replicas":1001}`, `{"replicas":-1}`, `{"replicas":1.5}`, `{"replicas":1e3}`,
		`{"replicas":18446744073709551615}`, `{"replicas":18446744073709551616}`, `{"replicas":9223372036854775808}`,
		`{"replicas":"3"}`, `{"replicas":null}`, `{"replicas":00}`, `{"replicas":-0}`,
	) {
		f.Add([]byte(b), "", "", uint8(padNone))
	}
	f.Add([]byte(`{"serviceName":"body","replicas":1}`), "path", "dev", uint8(padNone))
	f.Add([]byte(`{"replicas":1}`), "path", "", uint8(padLeading))
	f.Add([]byte(`{"replicas":1}`), "path", "", uint8(padTrailing))
	f.Fuzz(func(t *testing.T, data []byte, pathName, queryNS string, mode uint8) {
		fake := &fakeFunctions{}
		r := fuzzRequest(http.MethodPost, "/system/scale-function/x", data, mode)
		r = mux.SetURLVars(r, map[string]string{"name": pathName})
		setQuery(r, "namespace", queryNS)
		w := httptest.NewRecorder()
		ScaleFunction(fake)(w, r)
		var req types.ScaleServiceRequest
		decodes := json.Unmarshal(data, &req) == nil
		switch fake.calls {
		case 0:
			checkRefused(t, w, mode)
			if decodes && mode%padModes == padNone && req.Replicas <= 1000 {
				t.Fatalf("refused %s: %d %q", data, w.Code, w.Body.String())
			}
		case 1:
			if fake.replicas < 0 || fake.replicas > 1000 {
				t.Fatalf("scaled to %d replicas", fake.replicas)
			}
			got := types.ScaleServiceRequest{ServiceName: fake.name, Replicas: uint64(fake.replicas), Namespace: fake.ns}
			checkPassed(t, w, http.StatusAccepted, mode, data, got, func(want *types.ScaleServiceRequest) {
				if pathName != "" {
					want.ServiceName = pathName
				}
				if want.Namespace == "" {
					want.Namespace = queryNS
				}
			})
		default:
			t.Fatalf("the provider was called %d times", fake.calls)
		}
	})
}

// fakeSecrets records what the secrets handler passes on.
type fakeSecrets struct {
	calls  int
	method string
	sec    types.Secret
}

func (f *fakeSecrets) ListSecrets(ctx context.Context, ns string) ([]types.Secret, error) {
	return nil, nil
}

func (f *fakeSecrets) CreateSecret(ctx context.Context, s types.Secret) error {
	f.calls, f.method, f.sec = f.calls+1, http.MethodPost, s
	return nil
}

func (f *fakeSecrets) UpdateSecret(ctx context.Context, s types.Secret) error {
	f.calls, f.method, f.sec = f.calls+1, http.MethodPut, s
	return nil
}

func (f *fakeSecrets) DeleteSecret(ctx context.Context, ns, name string) error {
	f.calls, f.method, f.sec = f.calls+1, http.MethodDelete, types.Secret{Namespace: ns, Name: name}
	return nil
}

var secretMethods = []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}

// FuzzSecrets fuzzes the Secret body of POST, PUT and DELETE
// /system/secrets (and PATCH, which is refused), with a namespace in the
// query.
func FuzzSecrets(f *testing.F) {
	for _, b := range append(commonBodies,
		`{"name":"api-key","value":"s3cret"}`, `{"name":"k","namespace":"dev","rawValue":"AAEC/w=="}`,
		`{"name":"k","rawValue":"not base64!"}`, `{"name":"k","rawValue":""}`, `{"name":"k","rawValue":null}`,
		`{"name":"../../etc/passwd","value":"x"}`, `{"name":"k","value":"\u0000\ud83d\ude00"}`,
	) {
		for m := range secretMethods {
			f.Add([]byte(b), uint8(m), "", uint8(padNone))
		}
	}
	f.Add([]byte(`{"name":"k","value":"v"}`), uint8(0), "openfaas-fn", uint8(padNone))
	f.Add([]byte(`{"name":"k","value":"v"}`), uint8(1), "", uint8(padLeading))
	f.Add([]byte(`{"name":"k","value":"v"}`), uint8(2), "", uint8(padTrailing))
	f.Fuzz(func(t *testing.T, data []byte, method uint8, queryNS string, mode uint8) {
		m := secretMethods[int(method)%len(secretMethods)]
		fake := &fakeSecrets{}
		r := fuzzRequest(m, "/system/secrets", data, mode)
		setQuery(r, "namespace", queryNS)
		w := httptest.NewRecorder()
		SecretsHandler(fake)(w, r)
		switch fake.calls {
		case 0:
			if m == http.MethodPatch && w.Code == http.StatusMethodNotAllowed {
				var s types.Secret
				if json.Unmarshal(data, &s) != nil || mode%padModes != padNone {
					t.Fatalf("405 for a body that is not a secret: %q", data)
				}
				return
			}
			checkRefused(t, w, mode)
		case 1:
			if fake.method != m {
				t.Fatalf("%s called the provider's %s", m, fake.method)
			}
			code := map[string]int{http.MethodPost: 201, http.MethodPut: 200, http.MethodDelete: 200}[m]
			checkPassed(t, w, code, mode, data, fake.sec, func(want *types.Secret) {
				if want.Namespace == "" {
					want.Namespace = queryNS
				}
				if m == http.MethodDelete {
					*want = types.Secret{Name: want.Name, Namespace: want.Namespace}
				}
			})
		default:
			t.Fatalf("the provider was called %d times", fake.calls)
		}
	})
}

// fakeMigrator records the migration it is asked for, reports two steps,
// and ends as outcome says.
type fakeMigrator struct {
	outcome  uint8
	calls    int
	ns, name string
	target   api.MigrationTarget
	opts     api.MigrateOptions
}

func (m *fakeMigrator) Migrate(ctx context.Context, ns, name string, t api.MigrationTarget, opts api.MigrateOptions, report func(api.Progress)) error {
	m.calls++
	m.ns, m.name, m.target, m.opts = ns, name, t, opts
	report(api.Progress{Step: api.StepConnect})
	report(api.Progress{Step: api.StepConnect, Done: true, Bytes: 1 << 40, Rate: 1.5, Note: "a\nb \"c\""})
	switch m.outcome % 3 {
	case 1:
		return errors.New("line one\nline two")
	case 2:
		return &api.MigrationError{Step: "image", Err: errors.New("refused"), Restored: true}
	}
	return nil
}

func (m *fakeMigrator) Import(ctx context.Context, r io.Reader, replace bool) (types.FunctionStatus, error) {
	return types.FunctionStatus{}, nil
}

func (m *fakeMigrator) ImportImage(ctx context.Context, r io.Reader) error { return nil }

func (m *fakeMigrator) HasImage(ctx context.Context, id string) (bool, error) { return false, nil }

// fakeTarget is the target a TargetFunc made, with its arguments.
type fakeTarget struct {
	api.MigrationTarget
	url, user, password, token string
}

// FuzzMigrate fuzzes the api.MigrateRequest body of POST /system/migrate.
func FuzzMigrate(f *testing.F) {
	for _, b := range append(commonBodies,
		`{"functionName":"hello","to":"http://10.0.0.2:8080"}`,
		`{"functionName":"hello","namespace":"dev","to":"https://target.example/","toUser":"admin","toPassword":"p","toToken":"t","keep":true,"replace":true}`,
		`{"functionName":"hello","to":"http://user:pw@target:8080"}`, `{"functionName":"hello","to":"ftp://target"}`,
		`{"functionName":"hello","to":"http://"}`, `{"functionName":"hello","to":"http:///x"}`, `{"functionName":"hello","to":"//target"}`,
		`{"functionName":"hello","to":"http://[::1]:8080///"}`, `{"functionName":"hello","to":"http://h/%zz"}`, `{"functionName":"hello","to":"HTTP://h"}`,
		`{"functionName":"","to":"http://h"}`, `{"to":"http://h"}`, `{"functionName":"hello","to":"http://h","keep":"true"}`,
	) {
		f.Add([]byte(b), uint8(0), uint8(padNone))
	}
	f.Add([]byte(`{"functionName":"a","to":"http://h"}`), uint8(1), uint8(padNone))
	f.Add([]byte(`{"functionName":"a","to":"http://h"}`), uint8(2), uint8(padNone))
	f.Add([]byte(`{"functionName":"a","to":"http://h"}`), uint8(0), uint8(padLeading))
	f.Add([]byte(`{"functionName":"a","to":"http://h"}`), uint8(0), uint8(padTrailing))
	f.Fuzz(func(t *testing.T, data []byte, outcome, mode uint8) {
		m := &fakeMigrator{outcome: outcome}
		var targets []*fakeTarget
		target := func(_ api.Key, url, user, password, token string) api.MigrationTarget {
			ft := &fakeTarget{url: url, user: user, password: password, token: token}
			targets = append(targets, ft)
			return ft
		}
		w := httptest.NewRecorder()
		Migrate(m, target)(w, fuzzRequest(http.MethodPost, "/system/migrate", data, mode))
		if m.calls == 0 {
			if len(targets) != 0 {
				t.Fatal("a target was made for a refused migration")
			}
			checkRefused(t, w, mode)
			return
		}
		if m.calls != 1 || len(targets) != 1 || m.target != targets[0] {
			t.Fatalf("Migrate called %d times, %d targets made", m.calls, len(targets))
		}
		tg := targets[0]
		u, err := url.Parse(tg.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || strings.HasSuffix(tg.url, "/") {
			t.Fatalf("migrating to %q", tg.url)
		}
		got := api.MigrateRequest{FunctionName: m.name, Namespace: m.ns, To: tg.url, ToUser: tg.user, ToPassword: tg.password, ToToken: tg.token, Keep: m.opts.Keep, Replace: m.opts.Replace}
		checkPassed(t, w, http.StatusOK, mode, data, got, func(want *api.MigrateRequest) {
			want.To = strings.TrimRight(want.To, "/")
		})
		if m.name == "" {
			t.Fatal("migrated a function without a name")
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/x-ndjson" {
			t.Fatalf("Content-Type %q", ct)
		}
		var lines []api.Progress
		sc := bufio.NewScanner(w.Body)
		for sc.Scan() {
			var l api.Progress
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			lines = append(lines, l)
		}
		if len(lines) != 3 {
			t.Fatalf("%d lines, want 2 steps and an end", len(lines))
		}
		last := lines[2]
		switch outcome % 3 {
		case 0:
			if last.Result != "done" || last.Error != "" {
				t.Fatalf("last line %+v after a success", last)
			}
		default:
			if last.Result != "" || last.Error == "" || strings.Contains(last.Error, "\n") {
				t.Fatalf("last line %+v after a failure", last)
			}
			if outcome%3 == 2 && (last.Step != "image" || !last.Restored) {
				t.Fatalf("last line %+v lost the failed step", last)
			}
		}
	})
}

// fakeBackups records the restore it is asked for.
type fakeBackups struct {
	calls            int
	ns, name, backup string
}

func (b *fakeBackups) Backups(ctx context.Context, ns, name string) ([]api.Backup, error) {
	return nil, nil
}

func (b *fakeBackups) RestoreBackup(ctx context.Context, ns, name, backup string) error {
	b.calls++
	b.ns, b.name, b.backup = ns, name, backup
	return nil
}

// FuzzRestoreBackup fuzzes the body of POST /system/backups/{name}/restore.
func FuzzRestoreBackup(f *testing.F) {
	for _, b := range append(commonBodies,
		`{"backup":"bak-1700000000000000000"}`, `{"backup":""}`, `{"backup":"../../../etc"}`, `{"backup":null}`,
		`{"backup":1}`, `{"Backup":"bak-1","backup":"bak-2"}`, `{"backup":"bak-\u0000"}`,
	) {
		f.Add([]byte(b), "hello", "", uint8(padNone))
	}
	f.Add([]byte(`{"backup":"bak-1"}`), "", "dev", uint8(padNone))
	f.Add([]byte(`{"backup":"bak-1"}`), "hello", "", uint8(padLeading))
	f.Add([]byte(`{"backup":"bak-1"}`), "hello", "", uint8(padTrailing))
	f.Fuzz(func(t *testing.T, data []byte, pathName, queryNS string, mode uint8) {
		fake := &fakeBackups{}
		r := fuzzRequest(http.MethodPost, "/system/backups/x/restore", data, mode)
		r = mux.SetURLVars(r, map[string]string{"name": pathName})
		setQuery(r, "namespace", queryNS)
		w := httptest.NewRecorder()
		RestoreBackup(fake)(w, r)
		type body struct {
			Backup string `json:"backup"`
		}
		switch fake.calls {
		case 0:
			checkRefused(t, w, mode)
		case 1:
			if fake.backup == "" || fake.name != pathName || fake.ns != queryNS {
				t.Fatalf("restored %q of %q in %q", fake.backup, fake.name, fake.ns)
			}
			checkPassed(t, w, http.StatusAccepted, mode, data, body{Backup: fake.backup}, nil)
		default:
			t.Fatalf("the provider was called %d times", fake.calls)
		}
	})
}

// fakeLogs knows a few functions and checks a query as the provider does.
type fakeLogs struct {
	status, queries []logs.Request
}

func (l *fakeLogs) lookup(ns, name string) error {
	if err := api.ValidateName(name); err != nil {
		return err
	}
	if ns == "" {
		ns = "openfaas-fn"
	}
	switch ns + "/" + name {
	case "openfaas-fn/hello", "openfaas-fn/figlet", "dev/hello":
		return nil
	}
	return api.ErrNotFound
}

func (l *fakeLogs) Status(ctx context.Context, ns, name string) (types.FunctionStatus, error) {
	l.status = append(l.status, logs.Request{Namespace: ns, Name: name})
	return types.FunctionStatus{Name: name, Namespace: ns}, l.lookup(ns, name)
}

func (l *fakeLogs) Query(ctx context.Context, req logs.Request) (<-chan logs.Message, error) {
	l.queries = append(l.queries, req)
	if err := l.lookup(req.Namespace, req.Name); err != nil {
		return nil, err
	}
	ch := make(chan logs.Message)
	close(ch)
	return ch, nil
}

// streamRecorder is a ResponseRecorder faas-provider's log handler can
// stream to (it wants a CloseNotifier).
type streamRecorder struct {
	*httptest.ResponseRecorder
	closed chan bool
}

func (s streamRecorder) CloseNotify() <-chan bool { return s.closed }

// FuzzLogQuery fuzzes the query string of GET /system/logs. No panic, and
// the answer is 200, 400, 404 or 422: never a 500; the function whose logs
// are queried is the one whose status was checked. "tail=-1" and a
// repeated name or namespace ("name=hello&name=missing") answered 500
// before Logs read the last value, as faas-provider does, and refused a
// negative tail itself.
// faas-cli sends tail=-1 unless given --lines (`faas-cli logs FN
// --tail=false --since 1m`): faas-provider defines tail<=0 as unlimited, and
// the handler refused it with 400 (found by the conformance suite).
func TestLogsNegativeTailIsUnlimited(t *testing.T) {
	src := &fakeLogs{}
	r := httptest.NewRequest(http.MethodGet, "/system/logs?name=hello&tail=-1&since=2024-01-02T03:04:05Z", nil)
	w := streamRecorder{httptest.NewRecorder(), make(chan bool)}
	Logs(src, time.Second)(w, r)
	if w.Code != http.StatusOK || len(src.queries) != 1 || src.queries[0].Tail > 0 {
		t.Fatalf("tail=-1: %d %q, queries %+v", w.Code, w.Body.String(), src.queries)
	}
}

func FuzzLogQuery(f *testing.F) {
	for _, q := range []string{
		"", "name=hello", "name=hello&namespace=dev", "name=hello&namespace=nope", "name=missing", "name=Bad_Name",
		"name=hello&tail=10", "name=hello&tail=-1", "name=hello&tail=x", "name=hello&tail=99999999999999999999",
		"name=hello&since=2024-01-02T03:04:05Z", "name=hello&since=2024-01-02T03:04:05.999999999%2B01:00", "name=hello&since=yesterday",
		"name=hello&follow=true", "name=hello&follow=maybe", "name=hello&instance=hello-0", "name=hello&name=figlet",
		"name=hello&name=missing", "name=&name=hello", "namespace=dev&namespace=&name=hello", "name=hello;tail=1",
		"name=%zz", "name=hel%6co", "name=hello&tail=", "name=hello&since=", "name=hello&tail=1&tail=-1",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		src := &fakeLogs{}
		r := httptest.NewRequest(http.MethodGet, "/system/logs", nil)
		r.URL.RawQuery = raw
		w := streamRecorder{httptest.NewRecorder(), make(chan bool)}
		Logs(src, time.Second)(w, r)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("?%s: %d %q", raw, w.Code, w.Body.String())
		}
		if len(src.queries) > 1 || len(src.status) > 1 {
			t.Fatalf("?%s: %d status checks, %d queries", raw, len(src.status), len(src.queries))
		}
		if len(src.queries) == 1 {
			// The logs asked for are those of the function found.
			if len(src.status) != 1 {
				t.Fatalf("?%s: logs queried without a status check", raw)
			}
			s, q := src.status[0], src.queries[0]
			if s.Name != q.Name || s.Namespace != q.Namespace {
				t.Fatalf("?%s: checked %s/%s, queried %s/%s", raw, s.Namespace, s.Name, q.Namespace, q.Name)
			}
		}
		if w.Code == http.StatusOK && len(src.queries) != 1 {
			t.Fatalf("?%s: 200 without a query", raw)
		}
	})
}

package cli

import (
	"strings"
	"testing"
	"time"
)

// TestServeSettings: serve's environment variables and flags are read the
// OpenFaaS way, and a value that is not understood stops the start naming
// the setting, instead of being read as false (basic_auth=1 once turned
// basic auth off).
func TestServeSettings(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(*serveOptions) bool
		wantErr string
	}{
		{"basic_auth unset is on", nil, nil, func(o *serveOptions) bool { return o.basicAuth }, ""},
		{"no fleet unless asked", nil, nil, func(o *serveOptions) bool { return !o.fleet.Enabled() }, ""},
		{"--cluster-listen joins a fleet", nil, []string{"--port", "8081", "--state-dir", "/st", "--box-name", "fl1", "--box-labels", "rack=r1, gpu=yes",
			"--cluster-listen", "127.0.0.1:6222", "--cluster-routes", "nats://127.0.0.1:6222,nats://127.0.0.1:6223"}, func(o *serveOptions) bool {
			f := o.fleet
			return f.Enabled() && len(f.Routes) == 2 && f.Labels["rack"] == "r1" && f.Labels["gpu"] == "yes" &&
				f.Advertise == "http://fl1:8081" && f.KeyFile == "/st/fleet/key" && f.Dir == "/st/fleet/nats"
		}, ""},
		{"--cluster-routes alone", nil, []string{"--cluster-routes", "nats://127.0.0.1:6223"}, nil, "--cluster-listen"},
		{"--box-labels without =", nil, []string{"--cluster-nats", "nats://x:4222", "--box-labels", "rack"}, nil, "box-labels"},
		{"basic_auth=1", map[string]string{"basic_auth": "1"}, nil, func(o *serveOptions) bool { return o.basicAuth }, ""},
		{"basic_auth=TRUE", map[string]string{"basic_auth": "TRUE"}, nil, func(o *serveOptions) bool { return o.basicAuth }, ""},
		{"basic_auth=yes", map[string]string{"basic_auth": "yes"}, nil, func(o *serveOptions) bool { return o.basicAuth }, ""},
		{"basic_auth=0", map[string]string{"basic_auth": "0"}, nil, func(o *serveOptions) bool { return !o.basicAuth }, ""},
		{"basic_auth=FALSE", map[string]string{"basic_auth": "FALSE"}, nil, func(o *serveOptions) bool { return !o.basicAuth }, ""},
		{"basic_auth=maybe", map[string]string{"basic_auth": "maybe"}, nil, nil, `basic_auth="maybe"`},
		{"--basic-auth=yes", map[string]string{"basic_auth": "false"}, []string{"--basic-auth=yes"}, func(o *serveOptions) bool { return o.basicAuth }, ""},
		{"--basic-auth=maybe", nil, []string{"--basic-auth=maybe"}, nil, "basic-auth"},
		{"autoscale=0", map[string]string{"autoscale": "0"}, nil, func(o *serveOptions) bool { return !o.policy.Autoscale }, ""},
		{"restore_fallback=1", map[string]string{"restore_fallback": "1"}, nil, func(o *serveOptions) bool { return o.cfg.RestoreFallback }, ""},
		{"restore_fallback=sometimes", map[string]string{"restore_fallback": "sometimes"}, nil, nil, `restore_fallback="sometimes"`},
		{"write_timeout=90", map[string]string{"write_timeout": "90"}, nil, func(o *serveOptions) bool { return o.writeTimeout == 90*time.Second }, ""},
		{"write_timeout=2m", map[string]string{"write_timeout": "2m"}, nil, func(o *serveOptions) bool { return o.writeTimeout == 2*time.Minute }, ""},
		{"write_timeout=soon", map[string]string{"write_timeout": "soon"}, nil, nil, `write_timeout="soon"`},
		{"--read-timeout=30 (seconds)", nil, []string{"--read-timeout=30"}, func(o *serveOptions) bool { return o.readTimeout == 30*time.Second }, ""},
		{"scale_zero_duration=-1s", map[string]string{"scale_zero_duration": "-1s"}, nil, nil, "scale_zero_duration"},
		{"port=eighty", map[string]string{"port": "eighty"}, nil, nil, `port="eighty"`},
		{"memory_budget=lots", map[string]string{"memory_budget": "lots"}, nil, nil, "memory_budget"},
		{"memory_budget=512Mi", map[string]string{"memory_budget": "512Mi"}, nil, func(o *serveOptions) bool { return o.policy.Budget == 512<<20 }, ""},
		{"import_max_bytes=1e400Mi", map[string]string{"import_max_bytes": "1e400Mi"}, nil, nil, "import_max_bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			o, err := parseServeEnv(tt.args, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(o) {
				t.Errorf("setting read wrongly: %+v", o)
			}
		})
	}
}

package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseBool(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"true", true, false}, {"TRUE", true, false}, {"True", true, false},
		{"1", true, false}, {"yes", true, false}, {"YES", true, false}, {"on", true, false},
		{" true ", true, false},
		{"false", false, false}, {"FALSE", false, false}, {"0", false, false},
		{"no", false, false}, {"No", false, false}, {"off", false, false},
		{"maybe", false, true}, {"", false, true}, {"2", false, true}, {"t", false, true}, {"y", false, true},
	} {
		got, err := ParseBool(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"60", 60 * time.Second, false},
		{"0", 0, false},
		{"60s", 60 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"250ms", 250 * time.Millisecond, false},
		{"-5", 0, true},
		{"-5s", 0, true},
		{"5 minutes", 0, true},
		{"1.5", 0, true},
		{"99999999999999999999", 0, true},
	} {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"128Mi", 128 << 20, false},
		{"1.5Gi", 3 << 29, false},
		{"500M", 500e6, false},
		{"64000000", 64000000, false},
		{"1e3", 1000, false},
		{"5Mi", 5 << 20, false},
		{"1e400Mi", 0, true},
		{"9e18Gi", 0, true},
		{"0x10", 0, true},
		{"Inf", 0, true},
		{"NaN", 0, true},
		{"-1Mi", 0, true},
		{"128MB", 0, true},
	} {
		got, err := ParseMemory(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseMemory(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseCPU(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", 0, false}, {"500m", 5e8, false}, {"1", 1e9, false}, {".5", 5e8, false},
		{"1e400", 0, true}, {"1e9", 0, true}, {"500mi", 0, true}, {"0x1", 0, true}, {"-1", 0, true},
	} {
		got, err := ParseCPU(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseCPU(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestEnvRefusesWhatItDoesNotUnderstand(t *testing.T) {
	vars := map[string]string{
		"basic_auth": "maybe", "write_timeout": "soon", "port": "eighty",
		"good_bool": "TRUE", "good_dur": "30", "empty": "",
	}
	env := &Env{Lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	if !env.Bool("good_bool", false) {
		t.Error("good_bool=TRUE read as false")
	}
	if d := env.Duration("good_dur", 0); d != 30*time.Second {
		t.Errorf("good_dur=30 read as %v", d)
	}
	if !env.Bool("empty", true) || env.String("unset", "def") != "def" {
		t.Error("an empty or unset variable must give the default")
	}
	if env.Err() != nil {
		t.Fatalf("good values gave an error: %v", env.Err())
	}
	env.Bool("basic_auth", true)
	env.Duration("write_timeout", time.Second)
	env.Int("port", 8080)
	err := env.Err()
	if err == nil {
		t.Fatal("values that are not understood gave no error")
	}
	for _, want := range []string{`basic_auth="maybe"`, `write_timeout="soon"`, `port="eighty"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestBoolFlag(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		def     bool
		want    bool
		wantErr bool
	}{
		{nil, true, true, false},
		{[]string{"--x"}, false, true, false},
		{[]string{"--x=1"}, false, true, false},
		{[]string{"--x=yes"}, false, true, false},
		{[]string{"--x=FALSE"}, true, false, false},
		{[]string{"--x=no"}, true, false, false},
		{[]string{"--x=maybe"}, true, true, true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		var v bool
		BoolVar(fs, &v, "x", tt.def, "")
		err := fs.Parse(tt.args)
		if (err != nil) != tt.wantErr || (err == nil && v != tt.want) {
			t.Errorf("%v: got %v, %v; want %v, error %v", tt.args, v, err, tt.want, tt.wantErr)
		}
	}
}

func TestInitPath(t *testing.T) {
	present := filepath.Join(t.TempDir(), "faas-criu-init")
	if err := os.WriteFile(present, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, defErr := os.Stat(DefaultInitPath)
	for _, tt := range []struct {
		name, value, path string
		bad, note         bool
	}{
		{name: "explicit, present", value: present, path: present},
		{name: "explicit, missing", value: present + ".gone", bad: true},
		{name: "explicit, a directory", value: filepath.Dir(present), bad: true},
		{name: "unset: the default when it exists", path: map[bool]string{true: DefaultInitPath}[defErr == nil], note: defErr != nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &Env{Lookup: func(k string) (string, bool) { return tt.value, k == "FAAS_CRIU_INIT" && tt.value != "" }}
			path, note := e.InitPath()
			if path != tt.path || (note != "") != tt.note || (e.Err() != nil) != tt.bad {
				t.Fatalf("InitPath() = %q, %q, err %v; want %q, note %v, bad %v", path, note, e.Err(), tt.path, tt.note, tt.bad)
			}
		})
	}
}

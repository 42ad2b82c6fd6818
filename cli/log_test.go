package cli

import (
	"bytes"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"testing"
)

func TestSetupLogging(t *testing.T) {
	defer slog.SetDefault(slog.Default())
	defer log.SetOutput(log.Writer())
	for _, tt := range []struct {
		name      string
		o         logOptions
		wantErr   string
		wantLines int
	}{
		{"json at info: the debug line is dropped", logOptions{"json", "info"}, "", 3},
		{"json at debug", logOptions{"json", "debug"}, "", 4},
		{"json at error", logOptions{"json", "error"}, "", 1},
		{"bad format", logOptions{"xml", "info"}, `--log-format "xml"`, 0},
		{"bad level", logOptions{"text", "loud"}, `--log-level "loud"`, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := setupLogging(tt.o, &buf)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			slog.Debug("debug line")
			slog.Info("info line")
			log.Printf("WARNING: from the log package")
			log.Printf("ERROR: %s", "failed")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != tt.wantLines {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.wantLines, buf.String())
			}
			var last struct{ Level, Msg string }
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Level != "ERROR" || last.Msg != "ERROR: failed" {
				t.Errorf("last line %q: %+v %v", lines[len(lines)-1], last, err)
			}
		})
	}
}

package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
)

// logOptions are --log-format and --log-level.
type logOptions struct {
	format, level string
}

// setupLogging makes slog's default logger write to w in the chosen format
// at the chosen level, and sends the standard log package (used by
// faas-provider, and by provider/ and handlers/ for now) through it:
// a line starting "ERROR:" or "WARNING:" gets that level.
func setupLogging(o logOptions, w io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.level)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.level)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch o.format {
	case "text":
		h = slog.NewTextHandler(w, hopts)
	case "json":
		h = slog.NewJSONHandler(w, hopts)
	default:
		return fmt.Errorf("--log-format %q: want text or json", o.format)
	}
	logger := slog.New(h)
	slog.SetDefault(logger)
	log.SetFlags(0)
	log.SetOutput(stdlogBridge{logger})
	return nil
}

// stdlogBridge turns each line of the standard logger into a slog record.
type stdlogBridge struct{ l *slog.Logger }

func (b stdlogBridge) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	level := slog.LevelInfo
	switch {
	case strings.HasPrefix(msg, "ERROR:"):
		level = slog.LevelError
	case strings.HasPrefix(msg, "WARNING:"):
		level = slog.LevelWarn
	}
	b.l.Log(context.Background(), level, msg)
	return len(p), nil
}

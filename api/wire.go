package api

import (
	"context"
	"fmt"
	"io"
	"time"
)

// MigrateRequest is the body of POST /system/migrate: it asks a source
// faas-criu to move a function.
type MigrateRequest struct {
	FunctionName string `json:"functionName"`
	Namespace    string `json:"namespace,omitempty"`
	To           string `json:"to"`
	ToUser       string `json:"toUser,omitempty"`
	ToPassword   string `json:"toPassword,omitempty"`
	ToToken      string `json:"toToken,omitempty"`
	Keep         bool   `json:"keep,omitempty"`
	Replace      bool   `json:"replace,omitempty"`
}

// MigrateOptions choose how a migration ends.
type MigrateOptions struct {
	// Keep leaves a hibernated copy here instead of deleting the function.
	Keep bool
	// Replace lets the target overwrite a function of the same name.
	Replace bool
}

// Progress is one line of a migration's answer (NDJSON): a step's progress,
// then {"result":"done"}, or a line with "error" naming the failed step.
// The source's provider reports the first five fields.
type Progress struct {
	Step     string  `json:"step,omitempty"`
	Bytes    int64   `json:"bytes,omitempty"` // sent so far in this step (compressed)
	Rate     float64 `json:"rate,omitempty"`  // bytes per second in this step
	Done     bool    `json:"done,omitempty"`  // the step finished
	Note     string  `json:"note,omitempty"`
	Error    string  `json:"error,omitempty"`
	Restored bool    `json:"restored,omitempty"`
	Result   string  `json:"result,omitempty"`
}

// Migration steps, in order.
const (
	StepConnect    = "connect"
	StepCheckpoint = "checkpoint"
	StepImage      = "image"
	StepTransfer   = "transfer"
	StepFinish     = "finish"
)

// MigrationError says which step of a migration failed. The source builds
// it around the cause (Err); a client rebuilds it from the error line, where
// Message is the source's whole message, which already names the step.
type MigrationError struct {
	Step    string
	Err     error
	Message string
	// Restored says the function is running on the source again, with its
	// state.
	Restored bool
}

func (e *MigrationError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	msg := fmt.Sprintf("migration failed at step %q: %v", e.Step, e.Err)
	if e.Restored {
		msg += "; the function is running here again with its state"
	}
	return msg
}

func (e *MigrationError) Unwrap() error { return e.Err }

// MigrationTarget is the receiving faas-criu, as the source sees it.
type MigrationTarget interface {
	// Check makes sure the target answers, takes the credentials, and is a
	// faas-criu that can restore checkpoints.
	Check(ctx context.Context) error
	HasImage(ctx context.Context, id string) (bool, error)
	// SendImage streams a compressed docker save stream.
	SendImage(ctx context.Context, r io.Reader) error
	// Import streams a compressed migration archive; the target restores the
	// function before it answers.
	Import(ctx context.Context, r io.Reader, replace bool) error
}

// Backup describes one backup of one replica, as GET /system/backups/NAME
// lists them (newest first).
type Backup struct {
	Replica int       `json:"replica"`
	Name    string    `json:"name"`
	TakenAt time.Time `json:"takenAt"`
	Bytes   int64     `json:"bytes"`
}

// SleepInfo is the "sleep" section of /system/info: how functions sleep
// and wake here.
type SleepInfo struct {
	Strategy        string `json:"strategy"`
	IdleAfter       string `json:"idleAfter"`
	PauseAfter      string `json:"pauseAfter"`
	DeepAfter       string `json:"deepAfter"` // "0s": never
	RestoreFallback bool   `json:"restoreFallback"`
	WakeTimeout     string `json:"wakeTimeout"`
	Autoscale       bool   `json:"autoscale"`
}

// MemoryInfo is the "memory" section of /system/info: the budget for
// running functions (0: none) and what they use now.
type MemoryInfo struct {
	BudgetBytes int64 `json:"budgetBytes"`
	UsedBytes   int64 `json:"usedBytes"`
}

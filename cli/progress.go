package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/faas-criu/faas-criu/api"
)

// isTerminal says whether w is a terminal: progress bars are drawn there,
// plain lines elsewhere (a log file, CI, a pipe).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// spinner is build.Progress on a terminal: a spinner with the step, its
// current phase and the elapsed time.
type spinner struct {
	w    io.Writer
	what string
	bar  *progressbar.ProgressBar
}

func (s *spinner) Start(what string) {
	s.what = what
	s.bar = progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(s.w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
}

func (s *spinner) Phase(text string) {
	if s.bar != nil {
		s.bar.Describe(s.what + ": " + text)
	}
}

func (s *spinner) Done(error) {
	if s.bar != nil {
		_ = s.bar.Finish()
		s.bar = nil
	}
}

// phaseLines is build.Progress off a terminal: a line when the step starts
// and each time its phase changes.
type phaseLines struct {
	w     io.Writer
	start time.Time
	last  string
}

func (p *phaseLines) Start(what string) {
	p.start, p.last = time.Now(), ""
	fmt.Fprintln(p.w, what)
}

func (p *phaseLines) Phase(text string) {
	if text != p.last {
		p.last = text
		fmt.Fprintf(p.w, "  %5.1fs %s\n", time.Since(p.start).Seconds(), text)
	}
}

func (p *phaseLines) Done(error) {}

// migrateProgress shows a migration's steps: on a terminal, a bar per step
// that moves bytes; elsewhere a line per change (a step starting, bytes
// moving on, a step done): a report that changes none of these (a new rate
// alone) prints nothing.
type migrateProgress struct {
	w    io.Writer
	tty  bool
	bar  *progressbar.ProgressBar
	step string
	last string
}

func (m *migrateProgress) show(p api.Progress) {
	if m.tty {
		m.showBar(p)
		return
	}
	// The rate moves on every report; what counts as a change is the step,
	// its state or the bytes as shown.
	key := fmt.Sprintf("%s|%v|%s|%s", p.Step, p.Done, p.Note, humanBytes(float64(p.Bytes)))
	if key != m.last {
		m.last = key
		fmt.Fprintln(m.w, progressLine(p))
	}
}

func (m *migrateProgress) showBar(p api.Progress) {
	if p.Step != m.step || m.bar == nil {
		m.finishBar()
		m.step = p.Step
		// The server measures bytes and rate at its end of the stream: the
		// bar shows its figures, a spinner and the step's elapsed time.
		m.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(m.w),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	if p.Done {
		m.finishBar()
		fmt.Fprintln(m.w, progressLine(p))
		return
	}
	m.bar.Describe(progressLine(p))
}

func (m *migrateProgress) finishBar() {
	if m.bar != nil {
		_ = m.bar.Clear()
		m.bar = nil
	}
}

// progressLine is one step's state in words: starting, bytes going by, or
// done.
func progressLine(p api.Progress) string {
	switch {
	case p.Done && p.Bytes > 0:
		return fmt.Sprintf("  %-10s done: %s sent at %s/s", p.Step, humanBytes(float64(p.Bytes)), humanBytes(p.Rate))
	case p.Done && p.Note != "":
		return fmt.Sprintf("  %-10s done: %s", p.Step, p.Note)
	case p.Done:
		return fmt.Sprintf("  %-10s done", p.Step)
	case p.Bytes > 0:
		return fmt.Sprintf("  %-10s %s sent, %s/s", p.Step, humanBytes(float64(p.Bytes)), humanBytes(p.Rate))
	}
	return fmt.Sprintf("  %-10s ...", p.Step)
}

// humanBytes prints a byte count for people.
func humanBytes(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

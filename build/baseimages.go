package build

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/docker/docker/client"
)

// baseImage is a base image faas-criu makes locally, from what is
// installed on this machine and the Debian mirror, so that functions build
// with no registry.
type baseImage struct {
	Ref  string
	what string
	make func(ctx context.Context, cli client.APIClient, out io.Writer) error
}

// ensure makes the image unless it exists, and says how long that took
// on msgs. out receives the tools' output (nil: only on failure, in a log
// file); progress (may be nil) follows the making.
func (b *baseImage) ensure(ctx context.Context, cli client.APIClient, out, msgs io.Writer, progress Progress) error {
	present, err := imagePresent(ctx, cli, b.Ref)
	if err != nil || present {
		return err
	}
	start := time.Now()
	if progress == nil {
		fmt.Fprintf(msgs, "making base image %s (%s)\n", b.Ref, b.what)
	} else {
		progress.Start(fmt.Sprintf("making base image %s (%s)", b.Ref, b.what))
		ctx = context.WithValue(ctx, progressKey{}, progress)
	}
	err = b.make(ctx, cli, out)
	if progress != nil {
		progress.Done(err)
	}
	if err != nil {
		return fmt.Errorf("base image %s: %w", b.Ref, err)
	}
	fmt.Fprintf(msgs, "made base image %s in %s\n", b.Ref, seconds(time.Since(start)))
	return nil
}

type progressKey struct{}

// withPhases returns w, also passing each line that starts with "I: "
// (debootstrap's step lines: retrieving, validating, extracting,
// installing, configuring) to the context's Progress as a phase. w may be
// nil.
func withPhases(ctx context.Context, w io.Writer) io.Writer {
	p, ok := ctx.Value(progressKey{}).(Progress)
	if !ok {
		return w
	}
	pw := &phaseWriter{p: p}
	if w == nil {
		return pw
	}
	return io.MultiWriter(w, pw)
}

// phaseWriter splits what is written into lines and reports the "I: " ones.
type phaseWriter struct {
	p    Progress
	part []byte
}

func (w *phaseWriter) Write(b []byte) (int, error) {
	w.part = append(w.part, b...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.part[:i]))
		w.part = w.part[i+1:]
		if text, ok := strings.CutPrefix(line, "I: "); ok {
			w.p.Phase(text)
		}
	}
	return len(b), nil
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// staticBusybox returns a statically linked busybox, installing Debian's
// busybox-static package if there is none.
func staticBusybox(out io.Writer) (string, error) {
	find := func() string {
		for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
			if isStatic(p) {
				return p
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p, nil
	}
	if err := aptInstall(out, "busybox-static"); err != nil {
		return "", err
	}
	if p := find(); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("busybox-static is installed but no static busybox is in /bin or /usr/bin")
}

// isStatic says whether the file is an ELF executable with no interpreter.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return f.Type == elf.ET_EXEC || f.Type == elf.ET_DYN
}

// aptInstall installs Debian packages, updating the package lists once if
// the first attempt fails.
func aptInstall(out io.Writer, pkgs ...string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s is needed: install it as root (apt-get install %s)", strings.Join(pkgs, ", "), strings.Join(pkgs, " "))
	}
	fmt.Printf("installing %s with apt-get\n", strings.Join(pkgs, " "))
	install := append([]string{"-o", "DPkg::Lock::Timeout=60", "install", "-y", "--no-install-recommends"}, pkgs...)
	if err := runTool(out, "apt-get", install...); err == nil {
		return nil
	}
	if err := runTool(out, "apt-get", "-o", "DPkg::Lock::Timeout=60", "update"); err != nil {
		return err
	}
	return runTool(out, "apt-get", install...)
}

// runTool runs a command with DEBIAN_FRONTEND=noninteractive. Its output goes
// to out, or, when out is nil, is kept and its tail returned on failure.
func runTool(out io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var buf bytes.Buffer
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	} else {
		cmd.Stdout, cmd.Stderr = &buf, &buf
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w%s", name, strings.Join(args, " "), err, indentTail(buf.String(), 15))
	}
	return nil
}

// indentTail is the last n lines of s, indented on new lines, or "".
func indentTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return "\n    " + strings.Join(lines, "\n    ")
}

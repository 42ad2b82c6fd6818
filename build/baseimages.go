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

// ensure makes the image unless it exists, and says how long that took.
// out receives the tools' output (nil: only on failure, in a log file).
func (b *baseImage) ensure(ctx context.Context, cli client.APIClient, out io.Writer) error {
	present, err := imagePresent(ctx, cli, b.Ref)
	if err != nil || present {
		return err
	}
	fmt.Printf("making base image %s (%s)\n", b.Ref, b.what)
	start := time.Now()
	if err := b.make(ctx, cli, out); err != nil {
		return fmt.Errorf("base image %s: %w", b.Ref, err)
	}
	fmt.Printf("made base image %s in %s\n", b.Ref, seconds(time.Since(start)))
	return nil
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
	if err := run(out, "apt-get", install...); err == nil {
		return nil
	}
	if err := run(out, "apt-get", "-o", "DPkg::Lock::Timeout=60", "update"); err != nil {
		return err
	}
	return run(out, "apt-get", install...)
}

// run runs a command with DEBIAN_FRONTEND=noninteractive. Its output goes
// to out, or, when out is nil, is kept and its tail returned on failure.
func run(out io.Writer, name string, args ...string) error {
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

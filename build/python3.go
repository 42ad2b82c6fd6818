package build

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/docker/client"
)

// python3Ref is the local stand-in for python:* images.
const python3Ref = "faas-criu/python3:bookworm"

// debianSuite is the release the python3 base image is made from.
const debianSuite = "bookworm"

func python3Image() (*baseImage, error) {
	return &baseImage{
		Ref:  python3Ref,
		what: "Debian " + debianSuite + " minbase with python3, by debootstrap; about 40-55 s, depending on the mirror",
		make: makePython3,
	}, nil
}

// makePython3 debootstraps a minimal Debian with python3 from the
// configured mirror, strips documentation, locales and apt caches, adds the
// non-root user "app" (uid 1000), and imports the result.
func makePython3(ctx context.Context, cli client.APIClient, out io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("debootstrap needs root: run faas-criu build as root once to make %s", python3Ref)
	}
	debootstrap, err := exec.LookPath("debootstrap")
	if err != nil {
		if err := aptInstall(out, "debootstrap"); err != nil {
			return err
		}
		if debootstrap, err = exec.LookPath("debootstrap"); err != nil {
			debootstrap = "/usr/sbin/debootstrap"
		}
	}
	mirror := debianMirror(debianSuite)
	work, err := os.MkdirTemp("/var/tmp", "faas-criu-python3-")
	if err != nil {
		return err
	}
	defer func() {
		if err := removeRootfs(work); err != nil {
			fmt.Fprintf(os.Stderr, "faas-criu: %v\n", err)
		}
	}()
	root := filepath.Join(work, "rootfs")

	logw := out
	var logFile *os.File
	if out == nil {
		if logFile, err = os.CreateTemp("", "faas-criu-debootstrap-*.log"); err != nil {
			return err
		}
		defer logFile.Close()
		logw = logFile
	}
	cmd := exec.CommandContext(ctx, debootstrap, "--variant=minbase", "--include=python3", debianSuite, root, mirror)
	cmd.Stdout = withPhases(ctx, logw)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		msg := fmt.Sprintf("debootstrap --variant=minbase --include=python3 %s %s %s: %v", debianSuite, root, mirror, err)
		if logFile != nil {
			msg += fmt.Sprintf(" (its output is in %s)%s", logFile.Name(), indentTail(fileTail(logFile.Name()), 10))
		}
		return fmt.Errorf("%s", msg)
	}
	if logFile != nil {
		os.Remove(logFile.Name())
	}
	if err := stripRootfs(root); err != nil {
		return err
	}
	if err := runTool(out, "chroot", root, "useradd", "--create-home", "--user-group", "--uid", "1000", "--shell", "/usr/sbin/nologin", "app"); err != nil {
		return err
	}
	changes := []string{
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"ENV LANG=C.UTF-8",
		"LABEL io.faas-criu.base=python3 io.faas-criu.debian-suite=" + debianSuite,
		`CMD ["python3"]`,
	}
	// Device nodes and the contents of /proc and /sys are the engine's.
	skip := func(rel string) bool {
		return strings.HasPrefix(rel, "dev/") || strings.HasPrefix(rel, "proc/") || strings.HasPrefix(rel, "sys/")
	}
	return importRootfs(ctx, cli, python3Ref, changes, func(w io.Writer) error {
		r := newRootfsWriter(w)
		if err := r.tree(root, ".", skip); err != nil {
			return err
		}
		return r.Close()
	})
}

// stripRootfs removes what a function image never needs, and keeps later
// apt-get installs (ADDITIONAL_PACKAGE) from bringing documentation back.
func stripRootfs(root string) error {
	globs := []string{
		"usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*",
		"usr/share/lintian", "usr/share/linda",
		"var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*",
		"var/cache/debconf/*-old", "var/lib/dpkg/*-old", "var/log/*.log", "var/log/apt/*",
		"var/cache/ldconfig/aux-cache",
		// The engine provides these to each container.
		"etc/resolv.conf", "etc/hostname",
	}
	for _, g := range globs {
		matches, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			return err
		}
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return fmt.Errorf("strip %s: %w", m, err)
			}
		}
	}
	excludes := "# Added by faas-criu: function images carry no documentation.\n" +
		"path-exclude=/usr/share/doc/*\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\npath-exclude=/usr/share/locale/*\n"
	return os.WriteFile(filepath.Join(root, "etc/dpkg/dpkg.cfg.d/faas-criu-nodoc"), []byte(excludes), 0o644)
}

// debianMirror is the first configured apt source serving suite's main
// component (so a proxy or local mirror keeps working), or deb.debian.org.
func debianMirror(suite string) string {
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var uri string
		if strings.HasSuffix(f, ".sources") {
			uri = mirrorDeb822(string(data), suite)
		} else {
			uri = mirrorOneLine(string(data), suite)
		}
		if uri != "" {
			return strings.TrimRight(uri, "/")
		}
	}
	return "http://deb.debian.org/debian"
}

// mirrorOneLine reads "deb [options] URI SUITE COMPONENT..." lines.
func mirrorOneLine(text, suite string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 3 && f[1] == suite && slices.Contains(f[2:], "main") {
			return f[0]
		}
	}
	return ""
}

// mirrorDeb822 reads deb822 stanzas (Types, URIs, Suites, Components).
func mirrorDeb822(text, suite string) string {
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string][]string{}
		var last string
		for _, line := range strings.Split(stanza, "\n") {
			switch {
			case strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t"):
				if last != "" {
					fields[last] = append(fields[last], strings.Fields(line)...)
				}
			default:
				k, v, ok := strings.Cut(line, ":")
				if !ok {
					continue
				}
				last = strings.ToLower(strings.TrimSpace(k))
				fields[last] = strings.Fields(v)
			}
		}
		if e := fields["enabled"]; len(e) > 0 && e[0] == "no" {
			continue
		}
		if slices.Contains(fields["types"], "deb") && slices.Contains(fields["suites"], suite) &&
			slices.Contains(fields["components"], "main") && len(fields["uris"]) > 0 {
			return fields["uris"][0]
		}
	}
	return ""
}

// fileTail is the end of a file, for error messages.
func fileTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return string(data)
}

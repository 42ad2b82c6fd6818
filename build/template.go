package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// languageTemplate is a template's template.yml, as faas-cli reads it.
type languageTemplate struct {
	Language       string `yaml:"language"`
	FProcess       string `yaml:"fprocess"`
	WelcomeMessage string `yaml:"welcome_message"`
	// HandlerFolder is where the handler goes in the build context
	// (default "function").
	HandlerFolder string        `yaml:"handler_folder"`
	BuildOptions  []buildOption `yaml:"build_options"`
}

// buildOption is a named set of packages for ADDITIONAL_PACKAGE.
type buildOption struct {
	Name     string   `yaml:"name"`
	Packages []string `yaml:"packages"`
}

// foundTemplate is a language template found on disk.
type foundTemplate struct {
	Dir  string
	Spec languageTemplate
}

// templatePlaces lists, in order, the directories that may hold
// <lang>/ templates for a stack in stackDir:
//
//   - --template-dir, alone when given (DIR/<lang> or DIR/template/<lang>);
//   - ./template next to the stack file, where faas-cli keeps them;
//   - templates/template in the repository holding the stack file (the
//     nearest ancestor directory that has one);
//   - templates/template next to the faas-criu binary or one level up
//     (bin/faas-criu in the repository).
func templatePlaces(stackDir, override string) []string {
	if override != "" {
		return []string{override, filepath.Join(override, "template")}
	}
	places := []string{filepath.Join(stackDir, "template")}
	for d := stackDir; ; d = filepath.Dir(d) {
		if p := filepath.Join(d, "templates", "template"); isDirectory(p) {
			places = append(places, p)
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			bin := filepath.Dir(exe)
			places = append(places,
				filepath.Join(bin, "templates", "template"),
				filepath.Join(filepath.Dir(bin), "templates", "template"))
		}
	}
	return firstOfEach(places)
}

// findTemplate returns the first template for lang in places.
func findTemplate(lang string, places []string) (*foundTemplate, error) {
	if lang == "" || strings.ContainsAny(lang, `/\`) || lang == "." || lang == ".." {
		return nil, fmt.Errorf("invalid lang %q", lang)
	}
	for _, p := range places {
		dir := filepath.Join(p, lang)
		if !isDirectory(dir) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
			return nil, fmt.Errorf("template %s: no Dockerfile", dir)
		}
		t := &foundTemplate{Dir: dir}
		data, err := os.ReadFile(filepath.Join(dir, "template.yml"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("template %s: %w", dir, err)
		default:
			if err := yaml.Unmarshal(data, &t.Spec); err != nil {
				return nil, fmt.Errorf("template %s: template.yml: %w", dir, err)
			}
		}
		if t.Spec.HandlerFolder == "" {
			t.Spec.HandlerFolder = "function"
		}
		if hf := filepath.Clean(t.Spec.HandlerFolder); filepath.IsAbs(hf) || hf == ".." || strings.HasPrefix(hf, "../") {
			return nil, fmt.Errorf("template %s: handler_folder %q leaves the build context", dir, t.Spec.HandlerFolder)
		}
		return t, nil
	}
	hint := ""
	if lang == "python3-http" {
		// faas-criu's Python template once had this name; it differs from
		// OpenFaaS's python3-http (no of-watchdog, no pip), so it has its own.
		hint = "; faas-criu's own Python template is python3-http-debian (unlike OpenFaaS's python3-http it has no of-watchdog and installs no pip packages): set lang: python3-http-debian, or put OpenFaaS's python3-http in ./template (its build needs PyPI)"
	}
	return nil, fmt.Errorf("no template %q in %s (copy one there, or point --template-dir at a directory of templates)%s", lang, strings.Join(places, ", "), hint)
}

// checkDependencies refuses a build that would silently drop a handler's
// dependencies: a requirements.txt with any requirement in it, for a
// template whose Dockerfile never reads requirements.txt (faas-criu's
// python3-http-debian installs no pip packages: no PyPI is reachable from
// its builds). Comments and blank lines do not count.
func checkDependencies(t *foundTemplate, handlerDir string) error {
	req := filepath.Join(handlerDir, "requirements.txt")
	data, err := os.ReadFile(req)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", req, err)
	}
	var reqs []string
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			reqs = append(reqs, line)
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	df, err := os.ReadFile(filepath.Join(t.Dir, "Dockerfile"))
	if err != nil {
		return err
	}
	if strings.Contains(string(df), "requirements.txt") {
		return nil // the template installs them
	}
	return fmt.Errorf("%s lists %d requirement(s) (%s) that template %s does not install (it has no pip and no PyPI): remove them, and add Debian packages instead (python3-NAME, e.g. python3-requests) with build_args: {ADDITIONAL_PACKAGE: ...}", req, len(reqs), strings.Join(reqs, ", "), filepath.Base(t.Dir))
}

// additionalPackages resolves build_options names against the template's.
func (t *foundTemplate) additionalPackages(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		found := false
		for _, o := range t.Spec.BuildOptions {
			if o.Name == n {
				out = append(out, o.Packages...)
				found = true
				break
			}
		}
		if !found {
			var have []string
			for _, o := range t.Spec.BuildOptions {
				have = append(have, o.Name)
			}
			return nil, fmt.Errorf("build option %q is not offered by template %s (it offers: %s)", n, t.Dir, orNone(have))
		}
	}
	return out, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// isDirectory says whether p is a directory (following symlinks).
func isDirectory(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// firstOfEach keeps the first occurrence of each string, in order.
func firstOfEach(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

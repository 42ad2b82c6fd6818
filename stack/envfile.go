package stack

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	yaml "go.yaml.in/yaml/v3"
)

// readEnvFiles reads a function's environment files, each a YAML document
// holding only an "environment:" mapping, relative to dir. Later files
// override earlier ones. They are not substituted, as in faas-cli.
func readEnvFiles(w *walker, files []string, dir string, n *yaml.Node) (map[string]string, error) {
	if len(files) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for i, name := range files {
		field := fmt.Sprintf("environment_file[%d]", i)
		if name == "" {
			return nil, w.errorf(n, field, "empty file name")
		}
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		data, err := readSmallFile(path)
		if err != nil {
			return nil, &Error{File: w.file, Function: w.fn, Field: field, Msg: err.Error(), Err: err}
		}
		env, err := parseEnvFile(name, data, w, field)
		if err != nil {
			return nil, &Error{File: w.file, Function: w.fn, Field: field, Msg: err.Error(), Err: err}
		}
		for k, v := range env {
			out[k] = v
		}
	}
	return out, nil
}

// parseEnvFile reads one environment file; its errors name it.
func parseEnvFile(name string, data []byte, sw *walker, field string) (map[string]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	fw := &walker{file: name}
	if sw != nil {
		// Its warnings are placed in the stack file: FILE: function "a":
		// field "environment_file[0]": ENVFILE: field ...
		fw.warnings = sw.warnings
		fw.wrap = func(msg string) string {
			return (&Error{File: sw.file, Function: sw.fn, Field: field, Msg: msg}).Error()
		}
	}
	var env map[string]string
	err := fw.fields(doc.Content[0], "", map[string]func(*yaml.Node, string) error{
		"environment": func(v *yaml.Node, f string) (err error) {
			if env, err = fw.strMap(v, f); err != nil {
				return err
			}
			for k := range env {
				if !envName.MatchString(k) {
					return fw.errorf(v, f, "invalid variable name %q", k)
				}
			}
			return nil
		},
	})
	return env, err
}

// maxEnvFile bounds an environment file.
const maxEnvFile = 1 << 20

// readSmallFile reads a regular file of at most maxEnvFile bytes. A device
// or a FIFO is refused without blocking on it.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxEnvFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxEnvFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEnvFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxEnvFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxEnvFile)
	}
	return data, nil
}

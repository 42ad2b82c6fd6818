package checkpoint

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"strings"
)

// RuncConfPath is where runc looks for CRIU options to add to every dump and
// restore it asks for.
const RuncConfPath = "/etc/criu/runc.conf"

// RuncConf is what faas-criu needs from runc's CRIU configuration file.
type RuncConf struct {
	// TCPEstablished lets CRIU dump containers with established TCP
	// connections (a watchdog's keep-alive to its own process, a request in
	// flight).
	TCPEstablished bool
	// WorkDir is where CRIU leaves its logs and statistics. Docker gives CRIU
	// a work directory that is deleted after each dump; a work-dir line here
	// overrides it, so the statistics survive for faas-criu to read.
	WorkDir string
}

// ReadRuncConf parses a CRIU configuration file ("option [value]" per line,
// optionally with leading dashes, '#' comments). A missing file is an empty
// configuration.
func ReadRuncConf(path string) (RuncConf, error) {
	var c RuncConf
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimLeft(line, "-")
		key, value := line, ""
		if i := strings.IndexAny(line, " \t="); i >= 0 {
			key, value = line[:i], line[i+1:]
		}
		value = strings.Trim(strings.TrimSpace(value), `"`)
		switch key {
		case "tcp-established":
			c.TCPEstablished = true
		case "work-dir", "W":
			c.WorkDir = value
		}
	}
	return c, sc.Err()
}

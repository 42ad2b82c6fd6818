package fleet

import (
	"fmt"
	"sort"
	"strings"
)

// Box is what a box advertises of itself, renewed by its heartbeat.
type Box struct {
	Name   string            `json:"name"`
	URL    string            `json:"url"`
	Labels map[string]string `json:"labels,omitempty"`
	// MemAvailable is the box's MemAvailable (bytes) at its last
	// heartbeat.
	MemAvailable int64 `json:"memAvailable"`
	// Functions counts the functions placed on it (filled in by the
	// reader, from the placement records).
	Functions int    `json:"functions"`
	Seen      string `json:"seen"`
	// Instance is the box's id, kept in its state directory: a lease
	// entry written by another box under the same name is not renewed
	// over, while the same box restarted takes its lease back at once.
	Instance string `json:"instance,omitempty"`
}

// constraint is one OpenFaaS constraint: Swarm's "node.hostname == NAME",
// "node.labels.KEY != VALUE", or faas-netes' node selector "KEY=VALUE"
// (kubernetes.io/hostname=NAME naming the box).
type constraint struct {
	key   string // "hostname" or a label
	value string
	not   bool
}

func parseConstraint(s string) (constraint, error) {
	var c constraint
	var k, v string
	switch {
	case strings.Contains(s, "!="):
		k, v, _ = strings.Cut(s, "!=")
		c.not = true
	case strings.Contains(s, "=="):
		k, v, _ = strings.Cut(s, "==")
	case strings.Contains(s, "="):
		k, v, _ = strings.Cut(s, "=")
	default:
		return c, fmt.Errorf("constraint %q: want node.hostname == NAME, node.labels.KEY == VALUE or KEY=VALUE", s)
	}
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	switch {
	case k == "node.hostname" || k == "kubernetes.io/hostname" || k == "node.name":
		c.key = "hostname"
	case strings.HasPrefix(k, "node.labels."):
		c.key = "label:" + strings.TrimPrefix(k, "node.labels.")
	case k != "" && !strings.Contains(k, " "):
		c.key = "label:" + k
	default:
		return c, fmt.Errorf("constraint %q: unknown key %q", s, k)
	}
	if v == "" {
		return c, fmt.Errorf("constraint %q: no value", s)
	}
	c.value = v
	return c, nil
}

func (c constraint) matches(b Box) bool {
	var got string
	var ok bool
	if c.key == "hostname" {
		got, ok = b.Name, true
	} else {
		got, ok = b.Labels[strings.TrimPrefix(c.key, "label:")]
	}
	return (ok && got == c.value) != c.not
}

// Place picks the box for a new function: among the boxes that satisfy
// every constraint, the one with the most free memory (MemAvailable), then
// the fewest functions, then the first name (boxes on one machine share
// their MemAvailable). It returns why, for the status.
func Place(boxes []Box, constraints []string) (Box, string, error) {
	var cs []constraint
	for _, s := range constraints {
		c, err := parseConstraint(s)
		if err != nil {
			return Box{}, "", err
		}
		cs = append(cs, c)
	}
	var fit []Box
	for _, b := range boxes {
		ok := true
		for _, c := range cs {
			ok = ok && c.matches(b)
		}
		if ok {
			fit = append(fit, b)
		}
	}
	if len(fit) == 0 {
		names := make([]string, 0, len(boxes))
		for _, b := range boxes {
			names = append(names, b.Name)
		}
		return Box{}, "", fmt.Errorf("no live box satisfies the constraints %q (live boxes: %s)", constraints, strings.Join(names, ", "))
	}
	sort.Slice(fit, func(i, j int) bool {
		a, b := fit[i], fit[j]
		// Differences under 64 MiB are noise between heartbeats.
		if d := a.MemAvailable - b.MemAvailable; d > 64<<20 || d < -64<<20 {
			return d > 0
		}
		if a.Functions != b.Functions {
			return a.Functions < b.Functions
		}
		return a.Name < b.Name
	})
	b := fit[0]
	why := fmt.Sprintf("most free memory (%d MiB available, %d functions)", b.MemAvailable>>20, b.Functions)
	if len(cs) > 0 {
		why = fmt.Sprintf("constraints %s; then %s", strings.Join(constraints, ", "), why)
	}
	return b, why, nil
}

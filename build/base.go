package build

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// fromImage is the image of one FROM line.
type fromImage struct {
	image string // after ARG expansion
	// arg is the global ARG the whole image comes from ("FROM ${GO_IMAGE}"),
	// "" when the line names its image otherwise.
	arg string
}

var (
	argOnly = regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}?$`)
)

// dockerfileFroms reads the FROM images of a Dockerfile, expanding the
// global ARGs (those before the first FROM) with buildArgs overriding their
// defaults. Stages named by an earlier "AS" and scratch are left out.
func dockerfileFroms(dockerfile []byte, buildArgs map[string]string) ([]fromImage, error) {
	args := map[string]string{}
	stages := map[string]bool{"scratch": true}
	var out []fromImage
	seenFrom := false
	for _, line := range instructions(string(dockerfile)) {
		fields := strings.Fields(line)
		switch strings.ToUpper(fields[0]) {
		case "ARG":
			if seenFrom {
				continue
			}
			for _, a := range fields[1:] {
				name, def, _ := strings.Cut(a, "=")
				args[name] = strings.Trim(def, `"'`)
				if v, ok := buildArgs[name]; ok {
					args[name] = v
				}
			}
		case "FROM":
			seenFrom = true
			rest := fields[1:]
			for len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				return nil, fmt.Errorf("Dockerfile: %q: no image", line)
			}
			expr := rest[0]
			img, err := dockerfileExpand(expr, args)
			if err != nil {
				return nil, fmt.Errorf("Dockerfile: %q: %w", line, err)
			}
			if img == "" {
				return nil, fmt.Errorf("Dockerfile: %q: the image is empty (an ARG without a value?)", line)
			}
			if !stages[strings.ToLower(img)] {
				f := fromImage{image: img}
				if m := argOnly.FindStringSubmatch(expr); m != nil {
					f.arg = m[1]
				}
				out = append(out, f)
			}
			if len(rest) >= 3 && strings.EqualFold(rest[1], "AS") {
				stages[strings.ToLower(rest[2])] = true
			}
		}
	}
	return out, nil
}

// dockerfileExpand expands ARG references in a Dockerfile word with the
// Dockerfile's rules, which are not a stack file's (faas-cli's envsubst):
// $NAME, ${NAME}, ${NAME:-word} and ${NAME-word} (word when unset or
// empty, or unset), ${NAME:+word} and ${NAME+word} (word when set and not
// empty, or set), and \$ for a "$". A word may hold references.
func dockerfileExpand(word string, args map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(word); {
		c := word[i]
		switch {
		case c == '\\' && i+1 < len(word) && word[i+1] == '$':
			b.WriteByte('$')
			i += 2
		case c == '$' && i+1 < len(word) && word[i+1] == '{':
			depth, end := 0, -1
			for j := i + 2; j < len(word) && end < 0; j++ {
				switch word[j] {
				case '{':
					depth++
				case '}':
					if depth == 0 {
						end = j
					}
					depth--
				}
			}
			if end < 0 {
				return "", fmt.Errorf("unterminated \"${\" in %q", word)
			}
			body := word[i+2 : end]
			n := dockerNameLen(body)
			if n == 0 {
				return "", fmt.Errorf("bad substitution \"${%s}\"", body)
			}
			name, rest := body[:n], body[n:]
			v, set := args[name]
			switch {
			case rest == "":
				b.WriteString(v)
			case strings.HasPrefix(rest, ":-") || strings.HasPrefix(rest, "-"):
				alt := strings.TrimPrefix(strings.TrimPrefix(rest, ":"), "-")
				if set && (v != "" || rest[0] == '-') {
					b.WriteString(v)
				} else {
					x, err := dockerfileExpand(alt, args)
					if err != nil {
						return "", err
					}
					b.WriteString(x)
				}
			case strings.HasPrefix(rest, ":+") || strings.HasPrefix(rest, "+"):
				alt := strings.TrimPrefix(strings.TrimPrefix(rest, ":"), "+")
				if set && (v != "" || rest[0] == '+') {
					x, err := dockerfileExpand(alt, args)
					if err != nil {
						return "", err
					}
					b.WriteString(x)
				}
			default:
				return "", fmt.Errorf("unsupported substitution \"${%s}\"", body)
			}
			i = end + 1
		case c == '$':
			n := dockerNameLen(word[i+1:])
			if n == 0 {
				b.WriteByte('$')
				i++
				continue
			}
			b.WriteString(args[word[i+1:i+1+n]])
			i += 1 + n
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

func dockerNameLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return i
		}
	}
	return len(s)
}

// instructions splits a Dockerfile into instructions: comments and blank
// lines dropped, continuation lines joined.
func instructions(text string) []string {
	var out []string
	var cur strings.Builder
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// localBases are the base images faas-criu can make without a registry,
// keyed by the upstream repository they stand in for.
var localBases = map[string]func() (*baseImage, error){
	"golang": goBuilderImage,
	"python": python3Image,
}

// basePlan is what a build needs before it can run offline.
type basePlan struct {
	args  map[string]string // build args to add
	bases []*baseImage      // local base images to make if missing
}

// planBases checks a Dockerfile's base images. One not present locally is
// replaced, when it comes from an ARG the stack does not set and faas-criu
// has a local stand-in for it (golang → faas-criu/go-builder, python →
// faas-criu/python3), by that stand-in; with pull, Docker pulls instead.
// Any other missing base image is an error before anything is built.
func planBases(ctx context.Context, cli client.APIClient, dockerfile []byte, buildArgs map[string]string, pull bool) (*basePlan, error) {
	froms, err := dockerfileFroms(dockerfile, buildArgs)
	if err != nil {
		return nil, err
	}
	plan := &basePlan{args: map[string]string{}}
	for _, f := range froms {
		if pull {
			continue
		}
		present, err := imagePresent(ctx, cli, f.image)
		if err != nil {
			return nil, err
		}
		if present {
			continue
		}
		// The stand-in itself, named explicitly: make it.
		if b := standInNamed(f.image); b != nil {
			plan.bases = append(plan.bases, b)
			continue
		}
		_, userSet := buildArgs[f.arg]
		if f.arg != "" && !userSet {
			if mk, ok := localBases[familiarRepo(f.image)]; ok {
				b, err := mk()
				if err != nil {
					return nil, fmt.Errorf("base image %s is not present locally, and its local stand-in cannot be made: %w", f.image, err)
				}
				plan.args[f.arg] = b.Ref
				plan.bases = append(plan.bases, b)
				continue
			}
		}
		hint := "build or load it, or pass --pull to let Docker pull it"
		if f.arg != "" {
			hint += fmt.Sprintf(", or set build_args: {%s: IMAGE}", f.arg)
		}
		return nil, fmt.Errorf("base image %s is not present locally: %s", f.image, hint)
	}
	return plan, nil
}

// standInNamed returns the local base image called ref, if it is one.
func standInNamed(ref string) *baseImage {
	for _, mk := range localBases {
		if b, err := mk(); err == nil && b.Ref == ref {
			return b
		}
	}
	return nil
}

// familiarRepo is "golang" for golang:1.23 and docker.io/library/golang.
func familiarRepo(image string) string {
	n, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return ""
	}
	return reference.FamiliarName(n)
}

func imagePresent(ctx context.Context, cli client.APIClient, ref string) (bool, error) {
	_, err := cli.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case errdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

package build

import (
	"fmt"
	"os/exec"
	"strings"
)

// TagFormats are faas-cli's --tag values.
var TagFormats = []string{"latest", "sha", "branch", "describe"}

// Tag rewrites an image name as faas-cli's --tag does, from the git
// repository at dir: "latest" leaves it, "sha" appends -SHORTSHA to its
// tag, "branch" -BRANCH-SHORTSHA, "describe" the output of git describe
// (--tags --always --dirty). An image without a tag counts as :latest.
func Tag(image, format, dir string) (string, error) {
	var suffix string
	switch format {
	case "", "latest":
		return image, nil
	case "sha":
		sha, err := git(dir, "rev-parse", "--short", "HEAD")
		if err != nil {
			return "", err
		}
		suffix = sha
	case "branch":
		sha, err := git(dir, "rev-parse", "--short", "HEAD")
		if err != nil {
			return "", err
		}
		branch, err := git(dir, "rev-parse", "--abbrev-ref", "HEAD")
		if err != nil {
			return "", err
		}
		suffix = branch + "-" + sha
	case "describe":
		d, err := git(dir, "describe", "--tags", "--always", "--dirty")
		if err != nil {
			return "", err
		}
		suffix = d
	default:
		return "", fmt.Errorf("--tag %q: want one of %s", format, strings.Join(TagFormats, ", "))
	}
	// A registry's port is not a tag: only a colon after the last slash is.
	name, tag := image, "latest"
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		name, tag = image[:i], image[i+1:]
	}
	return name + ":" + tag + "-" + badTagChars.ReplaceAllString(suffix, "-"), nil
}

// git runs a git command in dir and returns its trimmed output.
func git(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("--tag needs a git repository: git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

package build

import (
	"os/exec"
	"strings"
	"testing"
)

func TestTag(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"init", "-q", "-b", "feature/x"},
		{"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one"},
	} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	out, _ := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	sha := strings.TrimSpace(string(out))
	for _, tt := range []struct {
		image, format, want string
	}{
		{"fn:1.0", "latest", "fn:1.0"},
		{"fn:1.0", "", "fn:1.0"},
		{"fn:1.0", "sha", "fn:1.0-" + sha},
		{"registry:5000/team/fn", "sha", "registry:5000/team/fn:latest-" + sha},
		{"fn:1.0", "branch", "fn:1.0-feature-x-" + sha},
		{"fn:1.0", "describe", "fn:1.0-" + sha},
	} {
		got, err := Tag(tt.image, tt.format, dir)
		if err != nil || got != tt.want {
			t.Errorf("Tag(%q, %q) = %q, %v; want %q", tt.image, tt.format, got, err, tt.want)
		}
	}
	if _, err := Tag("fn", "nightly", dir); err == nil || !strings.Contains(err.Error(), "want one of latest, sha, branch, describe") {
		t.Errorf("unknown format: %v", err)
	}
	if _, err := Tag("fn", "sha", t.TempDir()); err == nil || !strings.Contains(err.Error(), "git repository") {
		t.Errorf("outside a repository: %v", err)
	}
}

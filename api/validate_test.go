package api

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateNamesAndURLs(t *testing.T) {
	for _, ok := range []string{"a", "hello-1", strings.Repeat("a", 63)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Hello", "-a", "a-", "a_b", strings.Repeat("a", 64)} {
		if err := ValidateName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := ValidateNamespace("Bad_NS"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ValidateNamespace: %v", err)
	}
	for _, bad := range []string{"", "..", "a/b", ".x", "a..b"} {
		if err := ValidateSecretName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateSecretName(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:8080", "https://gw.example/x", "HTTP://h"} {
		if _, err := ParseURL(ok); err != nil {
			t.Errorf("ParseURL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://h", "http://", "http:///x", "//h", "http://h/%zz"} {
		if _, err := ParseURL(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseURL(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestParseScale(t *testing.T) {
	if n, err := ParseScale(LabelScaleMin, "0"); n != 0 || err != nil {
		t.Errorf("0: %d %v", n, err)
	}
	if n, err := ParseScale(LabelScaleMax, "1000"); n != 1000 || err != nil {
		t.Errorf("1000: %d %v", n, err)
	}
	for _, bad := range []string{"", "-1", "1001", "1.5", "two"} {
		_, err := ParseScale(LabelScaleMin, bad)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), LabelScaleMin) {
			t.Errorf("ParseScale(%q) = %v", bad, err)
		}
	}
}

// The source formats a migration's failure; a client rebuilds the same
// error from the line, without naming the step twice.
func TestMigrationErrorBothSides(t *testing.T) {
	src := &MigrationError{Step: StepImage, Err: errors.New("refused"), Restored: true}
	want := `migration failed at step "image": refused; the function is running here again with its state`
	if src.Error() != want || !errors.Is(src, src.Err) {
		t.Errorf("source: %q", src.Error())
	}
	client := &MigrationError{Step: StepImage, Message: src.Error(), Restored: true}
	if client.Error() != want {
		t.Errorf("client: %q", client.Error())
	}
}

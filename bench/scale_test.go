package main

import (
	"os"
	"strings"
	"testing"
)

func TestSpliceSectionReplacesInsertsAppends(t *testing.T) {
	sec := Section{Title: scaleTitle, Body: "new curve\n"}
	report := "# r\n\n## 9. Tiers\n\nx\n\n## What was tried\n\ny\n"
	got := spliceSection(report, sec)
	want := "# r\n\n## 9. Tiers\n\nx\n\n## " + scaleTitle + "\n\nnew curve\n\n## What was tried\n\ny\n"
	if got != want {
		t.Fatalf("insert before What was tried:\n%q\nwant\n%q", got, want)
	}
	// Run again with another curve: replaced in place, the rest kept.
	again := spliceSection(got, Section{Title: scaleTitle, Body: "newer\n"})
	if strings.Contains(again, "new curve") || !strings.Contains(again, "## "+scaleTitle+"\n\nnewer\n\n## What was tried\n\ny\n") || !strings.HasPrefix(again, "# r\n\n## 9. Tiers\n\nx\n\n") {
		t.Fatalf("replace:\n%q", again)
	}
	if got := spliceSection("", sec); got != "## "+scaleTitle+"\n\nnew curve\n" {
		t.Fatalf("empty report: %q", got)
	}
	if got := spliceSection("# r\n", sec); got != "# r\n\n## "+scaleTitle+"\n\nnew curve\n" {
		t.Fatalf("append: %q", got)
	}
}

func TestKeptSectionReadsItBack(t *testing.T) {
	path := t.TempDir() + "/REPORT.md"
	report := spliceSection("# r\n\n## What was tried\n\ny\n", Section{Title: scaleTitle, Body: "curve\n"})
	if err := writeFileString(path, report); err != nil {
		t.Fatal(err)
	}
	s, ok := keptSection(path, scaleTitle)
	if !ok || s.Body != "curve\n" {
		t.Fatalf("kept %v %q", ok, s.Body)
	}
	if _, ok := keptSection(path, "nope"); ok {
		t.Fatal("found a section that is not there")
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("10, 100,1000")
	if err != nil || len(got) != 3 || got[2] != 1000 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "100,10", "x", "1"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func writeFileString(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

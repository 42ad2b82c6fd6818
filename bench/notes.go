package main

import _ "embed"

// The findings of the investigation of the wake path, and what was tried:
// written by hand, kept next to the code and included in every report.
var (
	//go:embed findings.md
	findingsNotes string
	//go:embed tried.md
	triedNotes string
)

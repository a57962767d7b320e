package selftest

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// The prefixes of a step line. The outer `wgns selftest` counts the lines the world prints by
// them, so they are part of how the stages talk, not only of how the output looks.
const (
	okPrefix   = "  ok    "
	failPrefix = "  FAIL  "
	skipPrefix = "  skip  "
	// detailIndent starts a line that explains the step above it (output of a failed command).
	detailIndent = "          "
)

// report prints the steps of a self-test as they finish, one line each, and counts them. It is
// safe for concurrent use.
type report struct {
	mu                      sync.Mutex
	w                       io.Writer
	passed, failed, skipped int
}

func newReport(w io.Writer) *report { return &report{w: w} }

// ok records a step that passed.
func (r *report) ok(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.passed++
	fmt.Fprintln(r.w, okPrefix+oneLine(fmt.Sprintf(format, args...)))
}

// fail records a step that failed: what it checked and why it failed. detail, if not empty, is
// printed below it, indented (the output of a command that failed, say).
func (r *report) fail(what string, why error, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	fmt.Fprintln(r.w, failPrefix+oneLine(what)+": "+oneLine(fmt.Sprint(why)))
	for line := range strings.Lines(strings.TrimSpace(detail)) {
		fmt.Fprintln(r.w, detailIndent+strings.TrimRight(line, "\n"))
	}
}

// skip records a step that could not run on this machine, with the reason.
func (r *report) skip(what, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped++
	fmt.Fprintln(r.w, skipPrefix+oneLine(what)+": "+oneLine(why))
}

// note prints a line that is not a step.
func (r *report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, format+"\n", args...)
}

// counts returns the numbers of steps that passed and failed so far.
func (r *report) counts() (passed, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passed, r.failed
}

// summary is the closing line of a self-test.
func summary(passed, failed int) string {
	return fmt.Sprintf("selftest: %d passed, %d failed", passed, failed)
}

// stepKind tells a step line printed by report from any other line: +1 for ok, -1 for FAIL,
// 0 for anything else (skips, notes, details).
func stepKind(line string) int {
	switch {
	case strings.HasPrefix(line, okPrefix):
		return 1
	case strings.HasPrefix(line, failPrefix):
		return -1
	}
	return 0
}

// oneLine joins the lines of s with "; " so that a step stays one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var parts []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

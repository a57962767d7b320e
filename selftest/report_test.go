package selftest

import (
	"errors"
	"strings"
	"testing"

	"github.com/wgns/wgns/internal/golden"
)

func TestReportGolden(t *testing.T) {
	var b strings.Builder
	r := newReport(&b)
	r.note("wgns selftest: header")
	r.ok("namespace %s holds only lo and %s", "st", "st")
	r.fail("wgns up --userspace st.conf", errors.New("exit status 1"), "wgns: bringing up \"st\": boom\nsecond line\n")
	r.fail("two\nlines", errors.New("why\nand more"), "")
	r.skip("DNS through getent", "/usr/bin/getent is not installed")
	r.ok("  spaces around  ")
	passed, failed := r.counts()
	r.note("%s", summary(passed, failed))
	golden.Check(t, "report", b.String())
}

func TestStepKind(t *testing.T) {
	var b strings.Builder
	r := newReport(&b)
	r.ok("a")
	r.fail("b", errors.New("c"), "detail\n  FAIL  indented detail is not a step")
	r.skip("d", "e")
	r.note("  ok    a note that looks like a step still counts; notes must not start so")
	r.ok("f")
	passed, failed := 0, 0
	for line := range strings.Lines(b.String()) {
		switch stepKind(strings.TrimSuffix(line, "\n")) {
		case 1:
			passed++
		case -1:
			failed++
		}
	}
	if passed != 3 || failed != 1 {
		t.Errorf("counted %d passed and %d failed in\n%s\nwant 3 and 1", passed, failed, b.String())
	}
	if p, f := r.counts(); p != 2 || f != 1 {
		t.Errorf("report counts %d, %d; want 2, 1", p, f)
	}
}

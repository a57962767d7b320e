package errkind

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorf(t *testing.T) {
	kind, other := errors.New("kind"), errors.New("other")
	err := Errorf(kind, "bad %s", "thing")
	if err.Error() != "bad thing" {
		t.Errorf("text %q, want %q (without the kind's)", err, "bad thing")
	}
	if !errors.Is(err, kind) || !errors.Is(fmt.Errorf("wrapped: %w", err), kind) {
		t.Error("does not match its kind")
	}
	if errors.Is(err, other) {
		t.Error("matches another kind")
	}
}

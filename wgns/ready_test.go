package wgns

import (
	"testing"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/ready"
)

// TestReadyAgreesWithState: package ready, which exec uses without importing this package, looks
// for the marker and the state record where this package writes them, in the format it writes.
func TestReadyAgreesWithState(t *testing.T) {
	if ready.Dir != RunDir {
		t.Errorf("ready.Dir = %q, RunDir = %q", ready.Dir, RunDir)
	}
	if got, want := ready.Path("vpn"), ReadyPath("vpn"); got != want {
		t.Errorf("ready.Path = %q, ReadyPath = %q", got, want)
	}
	if got, want := ready.Dir+"/vpn.json", statePath("vpn"); got != want {
		t.Errorf("package ready looks for the state at %q; it is at %q", got, want)
	}
	id := nsmgr.ID{Dev: 4, Ino: 4026532281}
	if got, want := string(ready.Marker(id)), idString(id)+"\n"; got != want {
		t.Errorf("ready.Marker = %q; the reconciler compares with %q", got, want)
	}
}

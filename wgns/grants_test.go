package wgns

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wgns/wgns/nsmgr"
)

// Users is recorded as up read it, and repair (which reads the config again) is how a changed
// list takes effect: a dry run says what would change, repair changes the record and says so,
// and a second repair finds nothing to do.
func TestGrantsRecordedByUpAndRepair(t *testing.T) {
	f := newFakeSys()
	cfg := testConfig(t, "[Namespace]\nUsers = alice, @wgns\n")
	if _, err, _ := upOnce(f, cfg, ModeUserspace); err != nil {
		t.Fatal(err)
	}
	st, _ := f.readState("work")
	if want := []string{"alice", "@wgns"}; !reflect.DeepEqual(st.Users, want) {
		t.Fatalf("up recorded Users %q, want %q", st.Users, want)
	}

	for _, tc := range []struct {
		extra string
		want  []string
		line  string
	}{
		{"[Namespace]\nUsers = alice, @wgns\n", []string{"alice", "@wgns"}, ""},
		{"[Namespace]\nUsers = @wgns\n", []string{"@wgns"}, "let @wgns run programs in work without sudo (was alice, @wgns)"},
		{"", nil, "let no one run programs in work without sudo (was @wgns)"},
		{"[Namespace]\nUsers = bob\n", []string{"bob"}, "let bob run programs in work without sudo (was no one)"},
	} {
		changed := testConfig(t, tc.extra)
		f.acts = nil
		dry, err := repairFake(f, changed, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.acts) != 0 {
			t.Errorf("a dry run acted: %q", f.acts)
		}
		wet, err := repairFake(f, changed, false)
		if err != nil {
			t.Fatal(err)
		}
		var wantLines []string
		if tc.line != "" {
			wantLines = []string{tc.line}
		}
		if !reflect.DeepEqual(dry.Actions, wantLines) || !reflect.DeepEqual(wet.Actions, wantLines) {
			t.Errorf("Users %q: dry run said %q, repair said %q; want %q", tc.want, dry.Actions, wet.Actions, wantLines)
		}
		if st, _ := f.readState("work"); !reflect.DeepEqual(st.Users, tc.want) {
			t.Errorf("after repair the record says Users %q, want %q", st.Users, tc.want)
		}
		if again, err := repairFake(f, changed, false); err != nil || len(again.Actions) != 0 {
			t.Errorf("a second repair: %v, %q", err, again.Actions)
		}
	}
}

// The record's users field: written when there are users, read back, and absent otherwise (a
// record of an older wgns, without it, grants no one).
func TestStateFileUsers(t *testing.T) {
	dir := useRunDir(t)
	st := &State{Name: "work", Mode: ModeUserspace, Step: StepReady, Ready: true, Netns: nsmgr.ID{Dev: 4, Ino: 5},
		Since: time.Date(2026, 11, 22, 2, 40, 0, 0, time.UTC), Users: []string{"alice", "@wgns"}}
	if err := writeState(st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "work.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\"users\": [\n    \"alice\",\n    \"@wgns\"\n  ]") {
		t.Errorf("state file has no users list:\n%s", b)
	}
	got, err := ReadState("work")
	if err != nil || !reflect.DeepEqual(got.Users, st.Users) {
		t.Errorf("read back Users %q, %v", got.Users, err)
	}
	st.Users = nil
	if err := writeState(st); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "work.json"))
	if strings.Contains(string(b), `"users"`) {
		t.Errorf("a record without users mentions them:\n%s", b)
	}
}

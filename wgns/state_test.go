package wgns

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wgns/wgns/nsmgr"
)

func useRunDir(t *testing.T) string {
	t.Helper()
	old := runDir
	runDir = t.TempDir()
	t.Cleanup(func() { runDir = old })
	return runDir
}

// The state file's format is wgns's own: explicit names, a version, and every older version
// still read.
func TestStateFileFormat(t *testing.T) {
	dir := useRunDir(t)
	st := &State{Name: "work", Mode: ModeUserspace, Config: "/etc/wgns/work.conf", Step: StepReady, Ready: true,
		Netns: nsmgr.ID{Dev: 4, Ino: 4026532281}, PID: 1234, Start: 5678, Since: time.Date(2026, 11, 22, 2, 40, 0, 0, time.UTC)}
	if err := writeState(st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "work.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": 2,
  "name": "work",
  "mode": "userspace",
  "config": "/etc/wgns/work.conf",
  "step": "ready",
  "ready": true,
  "netns_dev": 4,
  "netns_ino": 4026532281,
  "pid": 1234,
  "pid_start": 5678,
  "since": "2026-11-22T02:40:00Z"
}
`
	if string(b) != want {
		t.Errorf("state file:\n%s\nwant:\n%s", b, want)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "work.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := ReadState("work")
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Errorf("read back %+v, %v; want %+v", got, err, st)
	}
}

// A state file written by wgns before the format had a version (November 2026) is read.
func TestStateFileVersion1IsRead(t *testing.T) {
	dir := useRunDir(t)
	v1 := `{
  "name": "work",
  "mode": "userspace",
  "config": "/etc/wgns/work.conf",
  "step": "ready",
  "ready": true,
  "netns": {
    "Dev": 4,
    "Ino": 4026532281
  },
  "pid": 1234,
  "pid_start": 5678,
  "since": "2026-11-22T02:40:00Z"
}
`
	if err := os.WriteFile(filepath.Join(dir, "work.json"), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState("work")
	if err != nil {
		t.Fatal(err)
	}
	want := State{Name: "work", Mode: ModeUserspace, Config: "/etc/wgns/work.conf", Step: StepReady, Ready: true,
		Netns: nsmgr.ID{Dev: 4, Ino: 4026532281}, PID: 1234, Start: 5678, Since: time.Date(2026, 11, 22, 2, 40, 0, 0, time.UTC)}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("got %+v, want %+v", *got, want)
	}
}

func TestStateFileErrors(t *testing.T) {
	dir := useRunDir(t)
	for _, tt := range []struct{ content, want string }{
		{`{"version": 3, "name": "work"}`, "has format version 3; this wgns reads up to 2"},
		{`{"name": `, "unexpected end of JSON input"},
	} {
		os.WriteFile(filepath.Join(dir, "work.json"), []byte(tt.content), 0o600)
		if _, err := ReadState("work"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.content, err, tt.want)
		}
	}
}

func TestReadyMarker(t *testing.T) {
	useRunDir(t)
	if readReady("work") != "" {
		t.Error("a marker that was never written reads as something")
	}
	if err := writeReady("work", nsmgr.ID{Dev: 4, Ino: 7}); err != nil {
		t.Fatal(err)
	}
	if got := readReady("work"); got != "4:7" {
		t.Errorf("marker %q", got)
	}
	if err := removeState("work"); err != nil {
		t.Fatal(err)
	}
	if readReady("work") != "" {
		t.Error("removeState left the marker")
	}
}

// The tunnel's lock is bounded: a wgns process that holds it too long is named, not waited for
// forever.
func TestLockIsBoundedAndNamesItsHolder(t *testing.T) {
	useRunDir(t)
	old := lockWait
	lockWait = 50 * time.Millisecond
	t.Cleanup(func() { lockWait = old })
	unlock, err := lock("work")
	if err != nil {
		t.Fatal(err)
	}
	_, err = lock("work") // a second open file description: flock conflicts with the first
	want := fmt.Sprintf("tunnel \"work\" is busy: process %d (%s) has held its lock for 50ms", os.Getpid(), strings.Join(os.Args, " "))
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	unlock()
	unlock, err = lock("work")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock()
}

func TestHolderAlive(t *testing.T) {
	self := &State{PID: os.Getpid(), Start: nsmgr.StartTime(os.Getpid())}
	if !self.holderAlive() {
		t.Error("this process is not alive")
	}
	for _, st := range []*State{
		{PID: os.Getpid(), Start: self.Start + 1}, // the PID reused by another process
		{PID: 0, Start: 1},
		{PID: 1 << 30, Start: 1}, // no such process
	} {
		if st.holderAlive() {
			t.Errorf("%+v counts as alive", st)
		}
	}
}

package wgns

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wgns/wgns/internal/golden"
)

// down from the CLI (not the holder): the holder is asked to tear down; programs inside make it
// refuse unless forced, and forced ones get SIGTERM, then SIGKILL if they ignore it.
func TestDown(t *testing.T) {
	var out strings.Builder
	for _, tt := range []struct {
		title   string
		mode    Mode
		procs   []*fakeProc
		force   bool
		setup   func(f *fakeSys)
		wantErr string
		wasUp   bool
	}{
		{title: "kernel, empty", mode: ModeKernel, wasUp: true},
		{title: "userspace, empty: the holder tears down", mode: ModeUserspace, wasUp: true},
		{title: "programs inside: refused", mode: ModeUserspace, procs: []*fakeProc{{pid: 300, comm: "curl"}, {pid: 301, comm: "transmission"}},
			wantErr: "processes still run inside: 300 (curl), 301 (transmission) (stop them, or use --force)", wasUp: true},
		{title: "programs inside: forced", mode: ModeUserspace, force: true, wasUp: true,
			procs: []*fakeProc{{pid: 300, comm: "curl"}, {pid: 301, comm: "stubborn", stubborn: true}}},
		{title: "a crashed holder's leftovers", mode: ModeUserspace, setup: func(f *fakeSys) { f.die() }, wasUp: true},
		{title: "not up", setup: func(f *fakeSys) { *f = *newFakeSys() }},
		{title: "a namespace wgns did not make", setup: func(f *fakeSys) {
			*f = *newFakeSys()
			f.files["work"] = &fakeNS{}
		}, wantErr: "/run/netns/work was not made by wgns; leaving it alone"},
	} {
		f := newFakeSys()
		if tt.mode != "" {
			if _, err, _ := upOnce(f, testConfig(t, ""), tt.mode); err != nil {
				t.Fatal(err)
			}
			f.states["work"] = func() State { s := f.states["work"]; s.PID = 4000; return s }() // held by another process
		}
		for _, p := range tt.procs {
			p.f = f
		}
		if ns := f.files["work"]; ns != nil {
			ns.procs = tt.procs
		}
		if tt.setup != nil {
			tt.setup(f)
		}
		f.acts = nil
		wasUp, err := down(f, "work", DownOptions{Force: tt.force})
		if got := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && got != tt.wantErr) {
			t.Errorf("%s: error %v, want %q", tt.title, err, tt.wantErr)
		}
		if wasUp != tt.wasUp {
			t.Errorf("%s: wasUp %v, want %v", tt.title, wasUp, tt.wasUp)
		}
		if errors.Is(err, ErrBusy) && len(f.acts) > 0 {
			t.Errorf("%s: a refused down acted: %q", tt.title, f.acts)
		}
		out.WriteString(transcript(tt.title, f, nil, err))
	}
	golden.Check(t, "down", out.String())
}

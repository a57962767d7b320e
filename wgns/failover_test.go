package wgns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/golden"
	"github.com/wgns/wgns/wgns/config"
)

// fakeRecord is a failover record in the fake, with the holder that wrote it.
type fakeRecord struct {
	pid   int
	start uint64
	r     FailoverRecord
}

func (f *fakeSys) readFailovers(name string, st *State) (*FailoverRecord, error) {
	rec, ok := f.records[name]
	if !ok || rec.pid != st.PID || rec.start != st.Start {
		return nil, nil
	}
	r := rec.r
	return &r, nil
}

func (f *fakeSys) writeFailovers(name string, pid int, start uint64, r *FailoverRecord) error {
	var groups []string
	for i, g := range r.Groups {
		groups = append(groups, fmt.Sprintf("group %d: %d failovers", i+1, g.Failovers))
	}
	if err := f.do("record the failovers of %s (holder %d): %s", name, pid, strings.Join(groups, "; ")); err != nil {
		return err
	}
	if f.records == nil {
		f.records = map[string]fakeRecord{}
	}
	f.records[name] = fakeRecord{pid: pid, start: start, r: *r}
	return nil
}

// holders says which peer holds the AllowedIPs of each failover group of cfg on the fake's
// device of tunnel work.
func (f *fakeSys) holders(cfg *config.Config) string {
	ns := f.files["work"]
	if ns == nil || ns.links["work"] == nil || ns.links["work"].dev == nil {
		return "no device"
	}
	var parts []string
	for g, pos := range activeOn(cfg, ns.links["work"].dev) {
		who := "no single peer"
		if pos >= 0 {
			who = "peer " + cfg.Peers[cfg.Groups[g].Peers[pos]].PublicKey.String()[:8] + "…"
		}
		parts = append(parts, fmt.Sprintf("failover group %d held by %s", g+1, who))
	}
	return strings.Join(parts, "; ") + "\n"
}

// The failover record's format is wgns's own: a version, the holder that wrote it, and each
// group; a record left by another holder is not read, and neither is a newer format.
func TestFailoverRecordFormat(t *testing.T) {
	dir := useRunDir(t)
	at := time.Date(2026, 11, 22, 2, 41, 5, 0, time.FixedZone("CET", 3600))
	rec := &FailoverRecord{Groups: []GroupRecord{
		{Peers: []wgtypes.Key{testPeerPub, testPeer2Pub}, Check: netip.MustParseAddr("192.0.2.1"), Failovers: 3, LastFailover: at},
		{Peers: []wgtypes.Key{testPeer2Pub, testPeerPub}, Failovers: 0, DownSince: at},
	}}
	if err := writeFailovers("work", 1234, 5678, rec); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "work.failover.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the record: %v, mode %v; want 0600", err, fi.Mode())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "work.failover.json"))
	want := fmt.Sprintf(`{
  "version": 1,
  "holder_pid": 1234,
  "holder_start": 5678,
  "groups": [
    {
      "peers": [
        "%[1]s",
        "%[2]s"
      ],
      "check": "192.0.2.1",
      "failovers": 3,
      "last_failover": "2026-11-22T01:41:05Z"
    },
    {
      "peers": [
        "%[2]s",
        "%[1]s"
      ],
      "failovers": 0,
      "down_since": "2026-11-22T01:41:05Z"
    }
  ]
}
`, testPeerPub, testPeer2Pub)
	if string(b) != want {
		t.Errorf("the record:\n%s\nwant:\n%s", b, want)
	}
	got, err := readFailovers("work", &State{PID: 1234, Start: 5678})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Groups[0].Peers) != fmt.Sprint(rec.Groups[0].Peers) || !got.Groups[0].LastFailover.Equal(at) ||
		got.Groups[0].Check != rec.Groups[0].Check || got.Groups[1].Check.IsValid() || !got.Groups[1].DownSince.Equal(at) {
		t.Errorf("read back %+v, want %+v", got, rec)
	}
	for _, st := range []*State{{PID: 1234, Start: 1}, {PID: 99, Start: 5678}} {
		if got, err := readFailovers("work", st); got != nil || err != nil {
			t.Errorf("the record of another holder (%d, %d) was read: %+v, %v", st.PID, st.Start, got, err)
		}
	}
	if got, err := readFailovers("other", &State{PID: 1234, Start: 5678}); got != nil || err != nil {
		t.Errorf("no record: %+v, %v", got, err)
	}
	if _, err := parseFailovers("work", []byte(`{"version": 2}`), &State{}); err == nil ||
		!strings.Contains(err.Error(), "has format version 2; this wgns reads up to 1") {
		t.Errorf("a newer format: %v", err)
	}
	// The record goes with the tunnel's other records.
	if err := removeState("work"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "work.failover.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the record outlived the state: %v", err)
	}
}

// status shows each peer's failover group and whether it is active, and per tunnel the
// failovers the supervisor recorded; a record left by another process is not shown.
func TestStatusFailover(t *testing.T) {
	var out strings.Builder
	f := newFakeSys()
	cfg := failoverConfig(t)
	f.configs[cfg.Path] = cfg
	tun, err, _ := upOnce(f, cfg, ModeKernel)
	if err != nil {
		t.Fatal(err)
	}
	show := func(title string) {
		s, err := getStatus(f, "work", false)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(s, "", "  ")
		out.WriteString("#### " + title + "\n" + string(b) + "\n")
	}
	show("no record yet")
	if _, _, err := tun.Failover(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	at := testNow.Add(time.Minute)
	if err := tun.RecordFailovers(FailoverRecord{Groups: []GroupRecord{{Peers: []wgtypes.Key{testPeerPub, testPeer2Pub},
		Check: netip.MustParseAddr("192.0.2.1"), Failovers: 1, LastFailover: at}}}); err != nil {
		t.Fatal(err)
	}
	show("after a failover")
	if err := tun.RecordFailovers(FailoverRecord{Groups: []GroupRecord{{Peers: []wgtypes.Key{testPeerPub, testPeer2Pub},
		Check: netip.MustParseAddr("192.0.2.1"), Failovers: 4, LastFailover: at.Add(6 * time.Second), DownSince: at.Add(6 * time.Second)}}}); err != nil {
		t.Fatal(err)
	}
	show("every peer down")
	st := f.states["work"]
	st.PID++
	f.states["work"] = st
	show("a record of another holder")
	golden.Check(t, "status-failover", out.String())
}

package wgns

import "testing"

// Link messages matter to the supervisors only when the link is up or was: a kernel WireGuard
// device made (down) in the host and moved out at an up wakes no one; an uplink that goes
// down, goes away or comes up does.
func TestLinkMessagesThatMatter(t *testing.T) {
	type msg struct {
		index         int
		deleted, isUp bool
		want          bool
	}
	for _, tc := range []struct {
		name string
		msgs []msg
	}{
		{"a device made down and moved out", []msg{{7, false, false, false}, {7, true, false, false}}},
		{"an uplink that comes up, then goes down", []msg{{3, false, false, false}, {3, false, true, true}, {3, false, false, true}, {3, false, false, false}}},
		{"an uplink removed while up", []msg{{4, false, true, true}, {4, true, true, true}, {4, true, true, false}}},
		{"an up link that changes", []msg{{2, false, true, true}, {2, false, true, true}}},
		{"a deleted index used again, down", []msg{{5, false, true, true}, {5, true, false, true}, {5, false, false, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := upLinks{}
			for i, m := range tc.msgs {
				if got := l.matters(m.index, m.deleted, m.isUp); got != m.want {
					t.Errorf("message %d (%+v): matters = %v, want %v", i+1, m, got, m.want)
				}
			}
		})
	}
}

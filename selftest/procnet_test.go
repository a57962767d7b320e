package selftest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcUDP(t *testing.T) {
	const header4 = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
	const header6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
	tests := []struct {
		name, text string
		want       []udpSocket
		wantErr    bool
	}{
		{"empty table", header4, nil, false},
		{"nothing at all", "", nil, false},
		{"v4", header4 +
			"  127: 00000000:CA6C 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 40123 2 0000000000000000 0\n" +
			" 2001: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 7 2 0000000000000000 0\n",
			[]udpSocket{{Port: 51820, Inode: 40123}, {Port: 53, Inode: 7}}, false},
		{"v6", header6 +
			"  127: 00000000000000000000000000000000:CA6C 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 40124 2 0000000000000000 0\n",
			[]udpSocket{{Port: 51820, Inode: 40124}}, false},
		{"short line", header4 + "  1: 00000000:CA6C 00000000:0000 07\n", nil, true},
		{"no port", header4 + "  1: 00000000 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1 2 0 0\n", nil, true},
		{"bad port", header4 + "  1: 00000000:XYZ 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1 2 0 0\n", nil, true},
		{"bad inode", header4 + "  1: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 x 2 0 0\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcUDP(strings.NewReader(tt.text))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error: %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sockets (-want +got):\n%s", diff)
			}
		})
	}
}

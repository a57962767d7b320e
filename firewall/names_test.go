package firewall

import (
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TestNames shows the names Inspect's rule text uses, and the fallback for a value without one.
func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{metaKeyName(expr.MetaKeyOIFNAME), "oifname"},
		{metaKeyName(expr.MetaKey(99)), "key 99"},
		{ctKeyName(expr.CtKeySTATE), "state"},
		{ctKeyName(expr.CtKey(42)), "key 42"},
		{cmpOpName(expr.CmpOpGte), "gte"},
		{cmpOpName(expr.CmpOp(9)), "op9"},
		{verdictName(expr.VerdictDrop), "drop"},
		{verdictName(expr.VerdictKind(7)), "verdict 7"},
		{hookName(unix.NF_INET_POST_ROUTING), "postrouting"},
		{hookName(nftables.ChainHook(9)), "hook 9"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

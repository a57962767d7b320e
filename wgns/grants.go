package wgns

import (
	"slices"
	"strings"

	"github.com/wgns/wgns/wgns/config"
)

// grants returns cfg's [Namespace] Users as the state records them: USER or @GROUP each, in
// file order; nil for none.
func grants(cfg *config.Config) []string {
	var g []string
	for _, u := range cfg.Namespace.Users {
		g = append(g, u.String())
	}
	return g
}

// grants records the config's Users in the state when they differ from those recorded: who may
// run programs in the tunnel through `wgns serve` is the config as up or repair read it, never
// the file as it is now. The service ends what it started under a grant that is gone as soon as
// the state says so.
func (r *reconciler) grants() error {
	want := grants(r.cfg)
	if slices.Equal(r.st.Users, want) {
		return nil
	}
	return r.act("let "+describeGrants(want)+" run programs in "+r.name+" without sudo (was "+describeGrants(r.st.Users)+")", func() error {
		r.st.Users = want
		return r.sys.writeState(r.st)
	})
}

// describeGrants names the users of a grant list for an action line.
func describeGrants(g []string) string {
	if len(g) == 0 {
		return "no one"
	}
	return strings.Join(g, ", ")
}

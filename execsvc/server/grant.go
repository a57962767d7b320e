package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os/user"
	"strconv"
	"strings"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns"
)

// accounts answers who a uid is and which groups it is in, from the user database.
type accounts interface {
	// name returns the name of the user uid.
	name(uid uint32) (string, error)
	// member reports whether user uid is in group (its primary group or a member, as
	// /etc/group says).
	member(uid uint32, group string) (bool, error)
}

// tunnels answers what a tunnel's record says.
type tunnels interface {
	// state returns the record of tunnel name; the error wraps fs.ErrNotExist when there is none.
	state(name string) (*wgns.State, error)
}

// grant is what a program started through the service depends on: the tunnel's namespace it
// runs in (which a new up replaces) and the user's place in the tunnel's Users.
type grant struct {
	name  string
	uid   uint32
	netns nsmgr.ID
}

// errNotUp and errNotGranted are wrapped by the refusals of check.
var (
	errNotUp      = errors.New("not up")
	errNotGranted = errors.New("not granted")
)

// check says whether user uid may run programs in tunnel name now: the tunnel is up and ready
// in the namespace netns (the zero ID: whichever it is in now), and its Users, as the last up or
// repair recorded them, name the user or a group the user is in. It returns the namespace the
// grant is for, or an error that says why not.
func check(ts tunnels, as accounts, name string, uid uint32, netns nsmgr.ID) (nsmgr.ID, error) {
	st, err := ts.state(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nsmgr.ID{}, fmt.Errorf("tunnel %q is %w", name, errNotUp)
	}
	if err != nil {
		return nsmgr.ID{}, err
	}
	if !st.Ready {
		return nsmgr.ID{}, fmt.Errorf("tunnel %q is %w: it is being set up, or is broken (an admin can run `wgns repair %s`)", name, errNotUp, name)
	}
	if netns != (nsmgr.ID{}) && st.Netns != netns {
		return nsmgr.ID{}, fmt.Errorf("tunnel %q was brought up anew, in another namespace", name)
	}
	who, err := as.name(uid)
	if err != nil {
		return nsmgr.ID{}, fmt.Errorf("uid %d: %w", uid, err)
	}
	for _, u := range st.Users {
		if g, ok := strings.CutPrefix(u, "@"); ok {
			in, err := as.member(uid, g)
			if err != nil {
				return nsmgr.ID{}, err
			}
			if in {
				return st.Netns, nil
			}
		} else if u == who {
			return st.Netns, nil
		}
	}
	return nsmgr.ID{}, fmt.Errorf("user %q is %w to run programs in tunnel %q: the tunnel's [Namespace] Users (as its last up or repair read them) names neither the user nor a group of the user's; an admin can add the user there and run `wgns repair %s`, or the user can use sudo",
		who, errNotGranted, name, name)
}

// userDB is the user database, through os/user (which reads /etc/passwd and /etc/group, as
// package identity does).
type userDB struct{}

func (userDB) name(uid uint32) (string, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

func (userDB) member(uid uint32, group string) (bool, error) {
	g, err := user.LookupGroup(group)
	var unknown user.UnknownGroupError
	if errors.As(err, &unknown) {
		return false, nil // a group that does not exist has no members
	}
	if err != nil {
		return false, err
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return false, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if id == g.Gid {
			return true, nil
		}
	}
	return false, nil
}

// stateFiles is the tunnels' records in wgns's runtime directory.
type stateFiles struct{}

func (stateFiles) state(name string) (*wgns.State, error) { return wgns.ReadState(name) }

// Package ready is a tunnel's readiness marker, the contract between `wgns up` and `wgns exec`:
// up writes Dir/NAME.ready once NAME is ready for programs (firewall, routes and DNS view in
// place), holding the ID of the namespace it made; exec enters NAME only through Open, which
// checks the marker against the very descriptor that exec then enters by.
//
// It is a package of its own, importing little, because it is on the exec path, which must
// start fast.
package ready

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/errkind"
	"github.com/wgns/wgns/nsmgr"
)

// Dir is wgns's runtime directory (package wgns's RunDir), where the markers live.
const Dir = "/run/wgns"

// ErrNotUp is wrapped by the error of Open when wgns has no record of the tunnel.
var ErrNotUp = errors.New("not up")

// ErrNotReady is wrapped by the error of Open when wgns has a record of the tunnel but it is not
// ready: being set up, broken, or left half-made by a crash.
var ErrNotReady = errors.New("not ready")

// ErrForeign matches (errors.Is) the error of Open when the namespace under the tunnel's name is
// gone, or is not the one wgns made (the name was reused).
var ErrForeign = errors.New("not the namespace wgns made")

// foreign is an error that matches ErrForeign without saying so.
func foreign(format string, args ...any) error {
	return errkind.Errorf(ErrForeign, format, args...)
}

// Path returns NAME's marker: Dir/File(name). It does not validate name.
func Path(name string) string { return Dir + "/" + File(name) }

// File returns the name of NAME's marker in Dir: NAME.ready.
func File(name string) string { return name + ".ready" }

// dirs are where Open looks: the runtime directory (Dir) and the namespaces' (nsmgr.RunDir).
type dirs struct{ run, netns string }

var system = dirs{run: Dir, netns: nsmgr.RunDir}

// Marker returns the contents of a marker for the namespace id.
func Marker(id nsmgr.ID) []byte {
	return []byte(strconv.FormatUint(id.Dev, 10) + ":" + strconv.FormatUint(id.Ino, 10) + "\n")
}

// maxMarker is more than any marker's size (two uint64 in decimal, a colon, a newline).
const maxMarker = 64

// Open opens the namespace of the tunnel name if it is ready: it reads name's marker, opens
// nsmgr.Path(name) once, and checks that the namespace of that descriptor is the one the marker
// names. The caller enters the namespace through the returned handle (never by opening the path
// again, which could by then lead elsewhere) and closes it. name must be valid
// (nsmgr.ValidateName).
//
// Errors wrap ErrNotUp (no record), ErrNotReady (a record, no marker) or ErrForeign (the
// namespace is gone or is another one), and say what to do.
func Open(name string) (netns.NsHandle, error) { return system.open(name) }

func (d dirs) open(name string) (netns.NsHandle, error) {
	want, err := d.readMarker(name)
	if err != nil {
		return netns.None(), err
	}
	path := d.netns + "/" + name
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return netns.None(), foreign("tunnel %q: its namespace %s is gone (%v); run `wgns repair %s`", name, path, err, name)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return netns.None(), fmt.Errorf("tunnel %q: identifying its namespace %s: %w", name, path, err)
	}
	if got := Marker(nsmgr.ID{Dev: st.Dev, Ino: st.Ino}); string(got) != want {
		unix.Close(fd)
		return netns.None(), foreign("tunnel %q: %s is no longer the namespace wgns made; refusing to enter it", name, path)
	}
	return netns.NsHandle(fd), nil
}

// readMarker returns the contents of name's marker.
func (d dirs) readMarker(name string) (string, error) {
	path := d.run + "/" + File(name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err == unix.ENOENT {
		// package wgns's record of NAME, which exists from the first step of up on.
		var st unix.Stat_t
		if unix.Stat(d.run+"/"+name+".json", &st) == nil {
			return "", fmt.Errorf("tunnel %q is %w (being set up, or left half-made: run `wgns repair %s`)", name, ErrNotReady, name)
		}
		return "", fmt.Errorf("tunnel %q is %w", name, ErrNotUp)
	}
	if err != nil {
		return "", fmt.Errorf("tunnel %q: opening %s: %w", name, path, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, maxMarker)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("tunnel %q: reading %s: %w", name, path, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return string(buf[:n]), nil
}

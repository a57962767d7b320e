package handoff

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// sessionSockets are the sockets of a user's session, under /run/user/UID, through which a
// program asks processes outside the tunnel to act for it: the session bus (D-Bus activation,
// portals, notification and keyring daemons) and the user's systemd manager's private socket
// (systemctl --user and systemd-run --user start units there).
var sessionSockets = [...]string{"bus", "systemd/private"}

// HideSessionBus covers, in the calling thread's mount namespace, each socket of
// sessionSockets that exists in uid's runtime directory /run/user/UID with /dev/null: a
// program that connects to it by path (rather than through DBUS_SESSION_BUS_ADDRESS, which
// exec disables) is refused. Only a socket owned by uid is covered; anything else there (a
// symbolic link of the user's, say) is left alone, and so is a runtime directory that does not
// exist. A socket re-created by a restart of its daemon is not covered.
//
// The thread must be locked, in a mount namespace of its own whose mounts are slaves of the
// host's, with CAP_SYS_ADMIN, before it switches to the user (nsmgr's Mounts function runs so).
// It opens no descriptor that outlives it.
func HideSessionBus(uid uint32) error {
	dir := "/run/user/" + strconv.FormatUint(uint64(uid), 10)
	for _, name := range sessionSockets {
		path := dir + "/" + name
		fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			continue
		}
		if err != nil {
			return fmt.Errorf("hiding the session's %s: %w", path, err)
		}
		err = cover(fd, uid)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("hiding the session's %s: %w", path, err)
		}
	}
	return nil
}

// cover binds /dev/null over the socket fd refers to, if it is a socket owned by uid.
func cover(fd int, uid uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Uid != uid {
		return nil
	}
	// Through the descriptor: the very file that was checked, whatever its path now leads to.
	return unix.Mount("/dev/null", "/proc/self/fd/"+strconv.Itoa(fd), "", unix.MS_BIND, "")
}

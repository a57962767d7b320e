package server

import (
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/wgns"
)

// recheckEvery is how often every grant is checked again even without a change seen: a safety
// net for changes the watches miss (a directory replaced, an overflowing event queue).
const recheckEvery = time.Minute

// watcher tells the service when a grant may have changed: a tunnel's record in wgns's runtime
// directory was written or removed (up, repair, down), or the user database changed (a user
// left a group).
type watcher struct {
	f *os.File // the inotify descriptor, non-blocking so that close ends run
}

// watched are the directories watched: the tunnels' records (NAME.json), and the user database
// (passwd, group).
var watched = []string{wgns.RunDir, "/etc"}

func newWatcher() (*watcher, error) {
	if err := os.MkdirAll(wgns.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("watching the tunnels' records: %w", err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watching the tunnels' records: %w", err)
	}
	for _, dir := range watched {
		if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_DELETE|unix.IN_CREATE); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("watching %s: %w", dir, err)
		}
	}
	return &watcher{f: os.NewFile(uintptr(fd), "inotify")}, nil
}

// run calls changed after every change that matters, and every recheckEvery, until close.
func (w *watcher) run(changed func()) {
	events := make(chan bool, 1)
	go func() {
		defer close(events)
		buf := make([]byte, 64<<10)
		for {
			n, err := w.f.Read(buf)
			if err != nil {
				return
			}
			if relevant(buf[:n]) {
				select {
				case events <- true:
				default: // a check is due already
				}
			}
		}
	}()
	tick := time.NewTicker(recheckEvery)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-tick.C:
		}
		changed()
	}
}

// relevant reports whether the inotify events in b include one about a file that matters (or a
// lost event).
func relevant(b []byte) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return true
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:end]), "\x00")
		b = b[end:]
		if ev.Mask&(unix.IN_Q_OVERFLOW|unix.IN_IGNORED) != 0 {
			return true
		}
		switch {
		case strings.HasSuffix(name, ".json"), name == "passwd", name == "group":
			return true
		}
	}
	return false
}

func (w *watcher) close() { w.f.Close() }

package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// fsEvent is one inotify event, stamped when the harness read it.
type fsEvent struct {
	path string // directory/name
	mask uint32
	at   time.Time
	step string // for a wgns state file renamed into place: the step it records, read at once
}

// fsWatch follows the files wgns writes as it goes (its state file is rewritten at every step
// of up), so that up and down can be cut into steps without tracing the processes. Events are
// stamped when read; a goroutine blocks on the inotify descriptor, so the stamp lags the event
// by the scheduling delay only.
type fsWatch struct {
	f      *os.File
	wds    map[int32]string
	events chan fsEvent
}

// newFSWatch watches the directories dirs (which must exist) for files created, renamed into
// place and deleted.
func newFSWatch(dirs ...string) *fsWatch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		fatalf("inotify: %v", err)
	}
	w := &fsWatch{wds: map[int32]string{}, events: make(chan fsEvent, 4096)}
	for _, d := range dirs {
		wd, err := unix.InotifyAddWatch(fd, d, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE)
		if err != nil {
			fatalf("watching %s: %v", d, err)
		}
		w.wds[int32(wd)] = d
	}
	w.f = os.NewFile(uintptr(fd), "inotify")
	go w.read()
	return w
}

func (w *fsWatch) read() {
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		at := time.Now()
		if err != nil {
			close(w.events)
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			l := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+l]
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			e := fsEvent{path: filepath.Join(w.wds[wd], string(name)), mask: mask, at: at}
			if mask&unix.IN_MOVED_TO != 0 && strings.HasSuffix(e.path, ".json") {
				// The file may already have been replaced by the next step's: then this
				// event gets the later step, and the first-occurrence rule of marks
				// attributes it a little early. Rare, and the medians absorb it.
				var st struct {
					Step string `json:"step"`
				}
				if b, err := os.ReadFile(e.path); err == nil && json.Unmarshal(b, &st) == nil {
					e.step = st.Step
				}
			}
			w.events <- e
			off += unix.SizeofInotifyEvent + l
		}
	}
}

// collect returns the events read so far, waiting up to limit for one that satisfies last.
func (w *fsWatch) collect(limit time.Duration, last func(fsEvent) bool) []fsEvent {
	var out []fsEvent
	timeout := time.After(limit)
	for {
		select {
		case e, ok := <-w.events:
			if !ok {
				return out
			}
			out = append(out, e)
			if last(e) {
				return out
			}
		case <-timeout:
			return out
		}
	}
}

// drop discards the events read so far.
func (w *fsWatch) drop() {
	for {
		select {
		case <-w.events:
		default:
			return
		}
	}
}

func (w *fsWatch) close() { w.f.Close() }

package ports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/wgns/wgns/internal/atomicfile"
	"github.com/wgns/wgns/wgns/config"
)

// Record is what a tunnel's supervisor tells `wgns status` about its ports: a JSON file that
// only root can read, replaced whole on every change.
type Record struct {
	// PID and Start (its start time in clock ticks) are the supervisor's: a record whose
	// supervisor is gone says nothing.
	PID   int    `json:"pid"`
	Start uint64 `json:"pid_start"`
	// Published lists the ports being served.
	Published []PublishedPort `json:"published,omitempty"`
	// Forward is the provider port forwarding, nil without PortForward.
	Forward *ForwardState `json:"forward,omitempty"`
}

// PublishedPort is one published port as status shows it.
type PublishedPort struct {
	// Listen is the host's address and port, e.g. "127.0.0.1:8080".
	Listen string `json:"listen"`
	// Port is the port on the namespace's loopback.
	Port uint16 `json:"port"`
	// Proto is "tcp" or "udp".
	Proto string `json:"proto"`
}

// PublishedPorts describes pubs for a Record.
func PublishedPorts(pubs []config.Publish) []PublishedPort {
	out := make([]PublishedPort, len(pubs))
	for i, p := range pubs {
		out[i] = PublishedPort{Listen: p.Host.String(), Port: p.Port, Proto: p.Proto}
	}
	return out
}

// Recorder writes a Record to a file, atomically, each time a part of it changes. It is safe
// for concurrent use.
type Recorder struct {
	path string
	mu   sync.Mutex
	rec  Record
	logf func(string, ...any)
}

// NewRecorder returns a Recorder of the record of process pid (started at start) at path; write
// failures go to logf (status then shows less, and nothing else depends on the file).
func NewRecorder(path string, pid int, start uint64, logf func(string, ...any)) *Recorder {
	return &Recorder{path: path, rec: Record{PID: pid, Start: start}, logf: logf}
}

// SetPublished records the ports being served.
func (r *Recorder) SetPublished(p []PublishedPort) { r.update(func(rec *Record) { rec.Published = p }) }

// SetForward records the state of the port forwarding.
func (r *Recorder) SetForward(st ForwardState) {
	r.update(func(rec *Record) { rec.Forward = &st })
}

func (r *Recorder) update(change func(*Record)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	change(&r.rec)
	b, err := json.Marshal(r.rec)
	if err == nil {
		err = atomicfile.Write(r.path, append(b, '\n'), 0o600, atomicfile.Options{})
	}
	if err != nil {
		r.logf("recording the ports for status: %v", err)
	}
}

// Remove removes the record.
func (r *Recorder) Remove() {
	r.mu.Lock()
	defer r.mu.Unlock()
	os.Remove(r.path)
}

// ReadRecord reads the record at path; the error wraps fs.ErrNotExist when there is none.
func ReadRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &rec, nil
}

// WritePort writes port, and only that number and a newline, to path, atomically: root's file,
// readable by everyone (a service told to read it runs as its own user). The directory path is
// in must let others through to it: a directory of root's that only root may enter (mode 0700)
// is opened to be entered, not listed (0711).
func WritePort(path string, port uint16) error {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o011 != 0o011 {
		if err := os.Chmod(dir, fi.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("letting others reach %s: %w", path, err)
		}
	}
	if err := atomicfile.Write(path, []byte(strconv.Itoa(int(port))+"\n"), 0o644, atomicfile.Options{}); err != nil {
		return fmt.Errorf("writing the forwarded port: %w", err)
	}
	return nil
}

// ReadPort reads the port in the file at path; 0 when there is none or it holds no port.
func ReadPort(path string) uint16 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}

// RemovePort removes the port file at path; an absent one is not an error.
func RemovePort(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

package supervisor

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
)

// message is one line on the readiness pipe from a supervisor to the `wgns up` that started it.
// Exactly one field is set. The last message is Ready or Error; the supervisor closes the pipe
// after it.
type message struct {
	Warning string `json:"warning,omitempty"`
	Ready   bool   `json:"ready,omitempty"`
	Error   string `json:"error,omitempty"`
}

// reporter is the supervisor's end of the readiness channel: the pipe to the `wgns up` that
// started it, or nothing when systemd did (then readiness is READY=1, and warnings go to
// stderr, the journal). It is used by one goroutine.
type reporter struct {
	w   *os.File // nil without a pipe
	enc *json.Encoder
}

// newReporter takes over descriptor fd (0: there is none).
func newReporter(fd int) *reporter {
	if fd <= 0 {
		return &reporter{}
	}
	w := os.NewFile(uintptr(fd), "readiness pipe")
	return &reporter{w: w, enc: json.NewEncoder(w)}
}

// piped reports whether a `wgns up` waits on the other end.
func (r *reporter) piped() bool { return r.w != nil }

func (r *reporter) send(m message) {
	if r.w != nil {
		r.enc.Encode(m) // a reader that went away loses nothing it still needs
	}
}

func (r *reporter) warn(s string) { r.send(message{Warning: s}) }

// ready says the tunnel is ready and closes the channel.
func (r *reporter) ready() { r.send(message{Ready: true}); r.close() }

// fail says why the tunnel could not be brought up and closes the channel.
func (r *reporter) fail(err error) { r.send(message{Error: err.Error()}); r.close() }

func (r *reporter) close() {
	if r.w != nil {
		r.w.Close()
		r.w = nil
	}
}

// outcome is what a `wgns up` read from its supervisor's pipe.
type outcome struct {
	warnings []string
	ready    bool
	err      string // the supervisor's own reason, if it gave one
}

// errNoOutcome is returned by readOutcome when the pipe closed without Ready or Error: the
// supervisor died (or was killed) before it could say anything.
var errNoOutcome = errors.New("the supervisor ended without a word")

// readOutcome reads messages until Ready, Error or the end of the pipe. Lines that are not
// messages are ignored: only the supervisor holds the other end.
func readOutcome(r io.Reader) (outcome, error) {
	var o outcome
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var m message
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		switch {
		case m.Warning != "":
			o.warnings = append(o.warnings, m.Warning)
		case m.Ready:
			o.ready = true
			return o, nil
		case m.Error != "":
			o.err = m.Error
			return o, nil
		}
	}
	return o, errNoOutcome
}

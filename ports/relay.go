package ports

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// chunk is how much one splice run carries, once a connection is half-open, before the relay
// looks at the clock again.
const chunk = 1 << 20

// relay carries bytes both ways between a and b until both directions are done, then closes
// both. A direction is done at end of file (the other side then gets a FIN, CloseWrite, as a
// half-close) or on an error. Once one direction is done, the other must move a byte at least
// every halfOpenIdle, or both are closed: a client that half-closes and then never reads, or a
// service that never answers, does not hold a connection forever.
//
// Each direction is (*net.TCPConn).ReadFrom from the other connection, which Go carries out with
// splice(2) through a pipe on Linux: the data never enters this process.
func relay(a, b *net.TCPConn, halfOpenIdle time.Duration) {
	var halfOpen atomic.Bool
	// idle sets the deadlines of one round of a direction: none while both ways are open, an
	// idle period once one is done. It reads halfOpen after clearing, so that it cannot undo
	// the deadline the relay sets when the other way ends.
	idle := func(dst, src *net.TCPConn) {
		if !halfOpen.Load() {
			src.SetReadDeadline(time.Time{})
			dst.SetWriteDeadline(time.Time{})
			if !halfOpen.Load() {
				return
			}
		}
		d := time.Now().Add(halfOpenIdle)
		src.SetReadDeadline(d)
		dst.SetWriteDeadline(d)
	}
	done := make(chan struct{}, 2)
	oneWay := func(dst, src *net.TCPConn) {
		defer func() { done <- struct{}{} }()
		for {
			idle(dst, src)
			// While both ways are open: to the end (or to the deadline the relay sets when the
			// other way ends); after that, a chunk at a time, each within the idle period.
			var r io.Reader = src
			limited := halfOpen.Load()
			if limited {
				r = &io.LimitedReader{R: src, N: chunk}
			}
			n, err := dst.ReadFrom(r)
			switch {
			case err == nil && limited && n == chunk:
				continue
			case errors.Is(err, os.ErrDeadlineExceeded) && n > 0:
				continue // still moving: another idle period
			case err == nil:
				dst.CloseWrite() // the end of what src sends
			}
			return
		}
	}
	go oneWay(b, a)
	go oneWay(a, b)
	<-done
	// One way is done: the other gets idle deadlines from now on (a splice in progress is
	// woken by this one and takes the idle rule on its next round).
	halfOpen.Store(true)
	d := time.Now().Add(halfOpenIdle)
	a.SetDeadline(d)
	b.SetDeadline(d)
	<-done
	a.Close()
	b.Close()
}

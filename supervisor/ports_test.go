package supervisor

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// After a failover moved a group to another peer, the loop calls peerChanged (the port
// forwarding asks the new peer's gateway at once); after one that moved nothing, or failed, it
// does not.
func TestLoopTellsThePortForwardingOfAFailover(t *testing.T) {
	tun := newFakeTunnel()
	tun.failoverOut = []failoverResult{{from: keyA, to: keyB}, {from: keyB, to: keyB}} // then: no result, an error
	requests := make(chan failoverRequest)
	changed := make(chan struct{}, 10)
	h := &harness{t: t, tun: tun, clk: newFakeClock(), n: &fakeNotifier{lines: make(chan string, 100)},
		sigs: make(chan os.Signal, 1), logs: make(chan string, 100), done: make(chan error, 1), events: make(chan eventKind)}
	l := &loop{name: "work", t: tun, clk: h.clk, n: h.n, sigs: h.sigs, events: h.events, reresolveEvery: 15 * time.Second,
		logf: func(format string, args ...any) { h.logs <- fmt.Sprintf(format, args...) }, failovers: requests,
		peerChanged: func() { changed <- struct{}{} }}
	go func() { h.done <- l.run() }()
	failover := func() {
		req := failoverRequest{group: 0, reply: make(chan failoverResult, 1)}
		requests <- req // taken once the loop is done with the one before, peerChanged included
		expect(t, "tunnel", tun.events, "failover group 1")
		<-req.reply
	}
	want := []int{1, 0, 0} // moved; stayed with its peer; failed
	check := func(i int) {
		if got := len(changed); got != want[i] {
			t.Errorf("failover %d: peerChanged called %d times, want %d", i+1, got, want[i])
		}
		for len(changed) > 0 {
			<-changed
		}
	}
	for i := range want {
		failover()
		if i > 0 {
			check(i - 1)
		}
	}
	if err := h.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	check(len(want) - 1)
}

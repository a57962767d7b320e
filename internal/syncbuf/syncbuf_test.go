package syncbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Writers and readers at once (run with -race): every write is kept, none is torn.
func TestConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		var i, j int
		if n, err := fmt.Sscanf(l, "w%d-%d", &i, &j); n != 2 || err != nil {
			t.Fatalf("a torn line: %q", l)
		}
	}
}

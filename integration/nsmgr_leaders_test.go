package integration

import (
	"os/exec"
	"testing"
	"time"

	"github.com/wgns/wgns/nsmgr"
)

// TestIntegrationNsmgrProcessLeaders: ProcessLeaders finds a process that entered the
// namespace, and not one outside.
func TestIntegrationNsmgrProcessLeaders(t *testing.T) {
	const name = "nsm-leaders"
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() { run("ip", "netns", "del", name) })
	inside := exec.Command("ip", "netns", "exec", name, "sleep", "100")
	outside := exec.Command("sleep", "100")
	for _, c := range []*exec.Cmd{inside, outside} {
		startUntilEnd(t, c)
	}
	id, err := nsmgr.IDByName(name)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "sleep to run inside", func() bool {
		procs, _ := nsmgr.ProcessLeaders(id)
		return len(procs) == 1 && procs[0].PID == inside.Process.Pid && procs[0].Comm == "sleep"
	})
}

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestZZPerf(t *testing.T) {
	if os.Getenv("ZZPERF") == "" {
		t.Skip()
	}
	const name = "ex"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	vs := strings.Split(os.Getenv("ZZPERF"), ";")
	res := make([][]float64, len(vs))
	for r := 0; r < 310; r++ {
		for i := range vs {
			j := i
			if r%2 == 1 {
				j = len(vs) - 1 - i
			}
			f := strings.Fields(strings.ReplaceAll(vs[j], "NAME", name))
			c := exec.Command(f[0], f[1:]...)
			c.Env = xdEnv()
			t0 := time.Now()
			if err := c.Run(); err != nil && r == 0 {
				out, _ := exec.Command(f[0], f[1:]...).CombinedOutput()
				t.Logf("%s: %v %s", vs[j], err, out)
			}
			if r >= 10 {
				res[j] = append(res[j], float64(time.Since(t0).Microseconds())/1000)
			}
		}
	}
	for i, v := range vs {
		sort.Float64s(res[i])
		fmt.Printf("%7.3f median %7.3f p25  %s\n", res[i][len(res[i])/2], res[i][len(res[i])/4], v)
	}
}

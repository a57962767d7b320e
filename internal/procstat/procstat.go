// Package procstat reads /proc/PID/stat.
package procstat

import (
	"os"
	"strconv"
	"strings"
)

// Fields returns the fields of /proc/PID/stat that follow the command name: Fields(pid)[0] is
// the state (field 3 in proc(5)), Fields(pid)[n] is field n+3. It returns nil if the process is
// gone or the file cannot be read. The command name, which may hold spaces and parentheses, is
// skipped up to the file's last ')'.
func Fields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

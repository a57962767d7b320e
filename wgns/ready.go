package wgns

import (
	"fmt"
	"path/filepath"

	"github.com/wgns/wgns/internal/atomicfile"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/ready"
)

// ReadyPath is the marker that exec checks (package ready owns its name and format): it exists
// only while NAME is ready, and holds the namespace's ID so a namespace swapped under the same
// name is not entered.
func ReadyPath(name string) string { return filepath.Join(runDir, ready.File(name)) }

func writeReady(name string, id nsmgr.ID) error {
	if err := atomicfile.Write(ReadyPath(name), ready.Marker(id), 0o644, atomicfile.Options{}); err != nil {
		return fmt.Errorf("marking tunnel %q ready: %w", name, err)
	}
	return nil
}

package wgns

import (
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/ready"
)

// ReadyPath is the marker that exec checks (package ready owns its format): it exists only while
// NAME is ready, and holds the namespace's ID so a namespace swapped under the same name is not
// entered.
func ReadyPath(name string) string { return ready.Path(name) }

func writeReady(name string, id nsmgr.ID) error {
	return writeFileAtomic(ReadyPath(name), ready.Marker(id), 0o644)
}

module github.com/wgns/wgns

go 1.26.8

require (
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/sys v0.32.0
)

require github.com/vishvananda/netns v0.0.5 // indirect

package dnsbind

// Bind is a read-only bind mount of Source on Target.
type Bind struct{ Source, Target string }

// ServiceBinds returns the read-only bind mounts that give a systemd service the DNS view of
// namespace name, as a drop-in's BindReadOnlyPaths= lines: the same view that Enter gives a
// program, except for /run, which stays the host's with the directories of HiddenPaths covered
// (see the package documentation for why):
//
//   - LinkDir on /etc, the host's /etc (with its submounts) on /etc/.wgns-host, and the files of
//     EtcDir/NAME on /etc/.wgns-view/resolv.conf and nsswitch.conf;
//   - LinkDir's empty directory on each directory of HiddenPaths.
//
// systemd (252, Debian 12's) mounts them in the order of their targets and resolves every source
// before any of them is mounted, so /etc's source is the host's /etc even though LinkDir covers
// it first; it creates a missing target (a directory of HiddenPaths the host does not have)
// before mounting, and it fails the service (226/NAMESPACE) if a source is missing. name must
// be a single path element; the caller validates it as a namespace name.
func ServiceBinds(name string) []Bind {
	binds := []Bind{
		{LinkDir, "/etc"},
		{"/etc", "/etc/" + hostDir},
		{EtcDir + "/" + name + "/" + resolvConf, "/etc/" + viewDir + "/" + resolvConf},
		{EtcDir + "/" + name + "/" + nsswitchConf, "/etc/" + viewDir + "/" + nsswitchConf},
	}
	for _, p := range HiddenPaths {
		binds = append(binds, Bind{LinkDir + "/" + emptyDir, p})
	}
	return binds
}

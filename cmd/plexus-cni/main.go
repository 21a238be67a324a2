// Command plexus-cni is the Plexus CNI plugin. The container runtime execs it for every pod
// sandbox (ADD, DEL, CHECK, GC, STATUS, VERSION); the plexus agent installs it. All logic lives
// in package agent/cni.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	plexuscni "github.com/plexus-net/plexus/agent/cni"
)

func main() {
	skel.PluginMainFuncs(plexuscni.PluginFuncs(), plexuscni.SupportedVersions, plexuscni.About)
}

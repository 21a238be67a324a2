package ipvs

import (
	"fmt"
	"os"
	"path/filepath"
)

// procSys is where sysctls live; /proc/sys/net is the network namespace of
// the thread that opens the file.
const procSys = "/proc/sys"

// Sysctls are the kernel settings the IPVS mode needs in the node's network
// namespace (keys with slashes, as under /proc/sys):
//   - net/ipv4/vs/conntrack=1 (both families): IPVS keeps conntrack entries
//     for its connections; without it, its packets skip conntrack and the
//     masquerade rules of NFTTable never apply.
var Sysctls = map[string]string{
	"net/ipv4/vs/conntrack": "1",
}

// SetSysctls writes Sysctls in the calling thread's network namespace.
func SetSysctls() error {
	for _, k := range sortedNames(Sysctls) {
		if err := os.WriteFile(filepath.Join(procSys, k), []byte(Sysctls[k]), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, Sysctls[k], err)
		}
	}
	return nil
}

package ipvs

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// procSys is where sysctls live; /proc/sys/net is the network namespace of
// the thread that opens the file.
const procSys = "/proc/sys"

// Sysctls are the kernel settings the IPVS mode needs in the node's network
// namespace (keys with slashes, as under /proc/sys). The net/ipv4/vs ones
// apply to both families and exist only once IPVS is loaded.
//
//   - net/ipv4/vs/conntrack=1: IPVS keeps conntrack entries for its
//     connections; without it, its packets skip conntrack and the
//     masquerade rules of NFTTable never apply.
//   - net/ipv4/vs/expire_nodest_conn=1: the flush of UDP flows of removed
//     endpoints (see below).
//   - net/ipv4/vs/expire_quiescent_template=1: a persistence (session
//     affinity) template whose real server has weight 0 expires, so sticky
//     clients move on with their next connection instead of staying on a
//     real server that takes no new ones.
//   - net/ipv4/conf/all/arp_ignore=1 and arp_announce=2 (as kube-proxy's
//     IPVS mode): every virtual IP is bound on DummyDevice, and Linux
//     answers ARP for any local address on any interface, so without them
//     the node would claim every ClusterIP and load-balancer IP on its
//     uplink. 1: answer only for addresses of the receiving interface; 2:
//     use the best local address of the outgoing interface as the source of
//     ARP requests, never a virtual IP. The kernel uses the larger of "all"
//     and the interface's own value, so "all" covers every interface.
//
// Why expire_nodest_conn and not conntrack(8) (which the nftables backend
// runs): in IPVS mode it is IPVS's own connection table, not conntrack,
// that sends the packets of an existing flow to its real server. Deleting
// a real server leaves its connection entries; with the default 0 IPVS
// silently drops their packets, without renewing the entry, until it times
// out (up to 5 minutes for UDP): a client that keeps its socket is cut off.
// With 1 the kernel expires them: since 5.9 a work queued by the deletion
// walks the table at once, before that the flow's next packet does it (and
// is dropped). With vs/conntrack=1 every IPVS connection owns its conntrack
// entry (IP_VS_CONN_F_NFCT) and expiring the connection drops that too, so
// the flow's next packet is scheduled afresh to a live real server with
// fresh NAT. Deleting the conntrack entry alone would not help: IPVS's
// entry would still pin the flow. Removed endpoints are therefore always
// deleted real servers, never quiesced ones (weight 0 keeps them
// "available" and their flows with them).
//
// They are not restored when the mode is turned off: after an agent restart
// the previous values are unknown (kube-proxy does the same).
var Sysctls = map[string]string{
	"net/ipv4/vs/conntrack":                 "1",
	"net/ipv4/vs/expire_nodest_conn":        "1",
	"net/ipv4/vs/expire_quiescent_template": "1",
	"net/ipv4/conf/all/arp_ignore":          "1",
	"net/ipv4/conf/all/arp_announce":        "2",
}

// SetSysctls writes Sysctls in the calling thread's network namespace.
func SetSysctls() error {
	for _, k := range slices.Sorted(maps.Keys(Sysctls)) {
		if err := os.WriteFile(filepath.Join(procSys, k), []byte(Sysctls[k]), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, Sysctls[k], err)
		}
	}
	return nil
}

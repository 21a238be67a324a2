package connectivity

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/plexus-net/plexus/agent/cni"
	"github.com/plexus-net/plexus/agent/routing"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// The probe address is the VTEP address, which IPAM never hands to a pod: no reservation needed.
func TestProbeAddrIsNeverAPodAddress(t *testing.T) {
	for _, s := range []string{"10.244.3.0/24", "10.244.3.0/30", "fd10:244:0:3::/64", "fd10:244:0:3::/126"} {
		pool := netip.MustParsePrefix(s)
		probe := ProbeAddr(pool)
		if probe != routing.VTEPAddr(pool) {
			t.Errorf("%s: probe address %s is not the VTEP address %s", s, probe, routing.VTEPAddr(pool))
		}
		used := map[netip.Addr]bool{}
		after := netip.Addr{}
		for {
			ip, err := cni.NextFree(pool, used, after)
			if err != nil {
				break
			}
			if ip == probe {
				t.Fatalf("%s: IPAM handed out the probe address %s", s, probe)
			}
			used[ip], after = true, ip
			if len(used) > 8 {
				break
			}
		}
	}
}

func TestTargetsFrom(t *testing.T) {
	nn := func(name string, probing bool, cidrs ...v1.CIDR) v1.NodeNetwork {
		n := v1.NodeNetwork{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NodeNetworkSpec{PodCIDRs: cidrs}}
		if probing {
			n.Status.Connectivity = &v1.ConnectivityStatus{}
		}
		return n
	}
	deleting := nn("d", true, "10.244.4.0/24")
	deleting.DeletionTimestamp = &metav1.Time{}
	nns := []v1.NodeNetwork{
		nn("c", true, "10.244.2.0/24"),
		nn("a", false, "10.244.0.0/24", "fd10:244::/64"),
		nn("b", true, "10.244.1.0/24", "fd10:244:0:1::/64"),
		nn("old-agent", false, "10.244.3.0/24"),
		nn("no-cidr", true),
		deleting,
	}
	cn := &v1.ClusterNetwork{Status: v1.ClusterNetworkStatus{AppliedGeneration: 2, Effective: &v1.ClusterNetworkSpec{
		PodNetwork: v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16", "fd10:244::/56"}},
		DNS:        &v1.DNS{ServiceIP: "10.96.0.10", ClusterDomain: "cluster.local"},
	}}}
	got := TargetsFrom("a", cn, nns)
	want := Targets{
		Local:           []netip.Prefix{netip.MustParsePrefix("10.244.0.0/24"), netip.MustParsePrefix("fd10:244::/64")},
		ClusterPodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd10:244::/56")},
		Peers:           []Peer{peerB, peerC},
		DNS:             &DNSTarget{Server: netip.MustParseAddrPort("10.96.0.10:53"), Name: "kubernetes.default.svc.cluster.local."},
	}
	eq := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	peq := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
	apeq := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	if diff := cmp.Diff(want, got, eq, peq, apeq); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	cn.Status.Effective.DNS.Enabled = ptr.To(false)
	if got := TargetsFrom("a", cn, nns); got.DNS != nil {
		t.Errorf("DNS disabled but probed: %+v", got.DNS)
	}
	if got := TargetsFrom("a", nil, nns); got.DNS != nil || len(got.Peers) != 2 {
		t.Errorf("without a ClusterNetwork: %+v", got)
	}
}

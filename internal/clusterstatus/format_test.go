package clusterstatus

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/golden"
)

var now = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

func cond(t, status, reason, msg string, ago time.Duration, gen int64) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(status), Reason: reason, Message: msg,
		ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(now.Add(-ago))}
}

func effective() *v1.ClusterNetworkSpec {
	return &v1.ClusterNetworkSpec{
		IPFamilies:     []v1.IPFamily{v1.IPv4, v1.IPv6},
		PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16", "fd00:10:244::/56"}},
		ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{"10.96.0.0/16", "fd00:10:96::/112"}, NodePortRange: "30000-32767"},
		Routing:        &v1.Routing{Mode: v1.RoutingAuto, MTU: ptr.To[int32](1450), Masquerade: ptr.To(true)},
		ServiceProxy:   &v1.ServiceProxy{Mode: v1.ServiceProxyNFTables},
		DNS:            &v1.DNS{Enabled: ptr.To(true), ServiceIP: "10.96.0.10"},
	}
}

func cluster(gen, observed, applied int64, conds ...metav1.Condition) *v1.ClusterNetwork {
	return &v1.ClusterNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultClusterNetworkName, Generation: gen},
		Status: v1.ClusterNetworkStatus{
			ObservedGeneration: observed, AppliedGeneration: applied, Conditions: conds, Effective: effective(),
			Nodes: v1.NodeRollup{Total: 3, Allocated: 3, Ready: 3, AtGeneration: 3},
			PodCIDRUsage: []v1.CIDRUsage{
				{CIDR: "10.244.0.0/16", NodeMaskSize: 24, Capacity: 256, Allocated: 3},
				{CIDR: "fd00:10:244::/56", NodeMaskSize: 64, Capacity: 256, Allocated: 3},
			},
			DNSServiceIP: "10.96.0.10",
		},
	}
}

func node(name string, i int, programmed int64, ready, reason, lastErr string) v1.NodeNetwork {
	n := v1.NodeNetwork{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Spec.PodCIDRs = []v1.CIDR{v1.CIDR("10.244." + string(rune('0'+i)) + ".0/24")}
	n.Status = v1.NodeNetworkStatus{ProgrammedGeneration: programmed, UplinkInterface: "eth0", Routes: 2, Services: 3,
		LastError: lastErr, Conditions: []metav1.Condition{cond(v1.ConditionNodeReady, ready, reason, "", time.Minute, programmed)}}
	return n
}

func TestFormat(t *testing.T) {
	readyConds := []metav1.Condition{
		cond(v1.ConditionProgressing, "False", v1.ReasonAllNodesProgrammed, "all 3 nodes have programmed generation 2", 90*time.Second, 2),
		cond(v1.ConditionReady, "True", v1.ReasonAsExpected, "all 3 nodes are networked at generation 2", 90*time.Second, 2),
		cond(v1.ConditionConfigValid, "True", v1.ReasonAsExpected, "generation 2 is valid and served", 3*time.Hour, 2),
	}
	for _, tc := range []struct {
		name      string
		snap      Snapshot
		wantReady bool
		wantWhy   string
	}{
		{
			name: "ready",
			snap: Snapshot{Now: now, Cluster: cluster(2, 2, 2, readyConds...), Nodes: []v1.NodeNetwork{
				node("node-c", 2, 2, "True", "AsExpected", ""), node("node-a", 0, 2, "True", "AsExpected", ""),
				node("node-b", 1, 2, "True", "AsExpected", ""),
			}},
			wantReady: true,
		},
		{
			name: "node-failing",
			snap: Snapshot{Now: now, Cluster: cluster(3, 3, 3,
				cond(v1.ConditionReady, "False", v1.ReasonNodesNotReady, "1 of 2 nodes is not Ready:\nnode-b", 20*time.Second, 3),
				cond(v1.ConditionProgressing, "True", v1.ReasonNodesProgramming, "1 of 2 nodes programmed generation 3", 25*time.Second, 3),
			), Nodes: []v1.NodeNetwork{
				node("node-a", 0, 3, "True", "AsExpected", ""),
				node("node-b", 1, 2, "False", "SyncFailed",
					"program services: nftables transaction failed: Error: Could not process rule: No such file or directory"),
			}},
			wantWhy: "Ready is False (NodesNotReady): 1 of 2 nodes is not Ready: node-b; nodes not Ready: node-b",
		},
		{
			name: "spec-not-observed",
			snap: Snapshot{Now: now, Cluster: cluster(4, 3, 3, readyConds...), Nodes: []v1.NodeNetwork{
				node("node-a", 0, 3, "True", "AsExpected", ""),
			}},
			wantWhy: "the operator has not yet observed generation 4 (status describes generation 3)",
		},
		{
			name:    "fresh",
			snap:    Snapshot{Now: now, Cluster: &v1.ClusterNetwork{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 1}}},
			wantWhy: "the ClusterNetwork has no Ready condition yet (is the operator running?)",
		},
		{
			name:    "missing",
			snap:    Snapshot{Now: now},
			wantWhy: "no ClusterNetwork default",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready, why := Verdict(tc.snap)
			if ready != tc.wantReady || why != tc.wantWhy {
				t.Errorf("Verdict = %v, %q; want %v, %q", ready, why, tc.wantReady, tc.wantWhy)
			}
			var b bytes.Buffer
			Format(&b, tc.snap)
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			last := lines[len(lines)-1]
			if tc.wantReady != strings.HasPrefix(last, "Ready: ") || !tc.wantReady && !strings.HasPrefix(last, "NOT READY: ") {
				t.Errorf("last line %q does not give the verdict", last)
			}
			golden.Assert(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes(), "./internal/clusterstatus/")
		})
	}
}

func TestNodeRowMarksLaggingGeneration(t *testing.T) {
	var b bytes.Buffer
	FormatNodes(&b, []v1.NodeNetwork{node("n1", 0, 4, "True", "", "")}, 5)
	if !strings.Contains(b.String(), "4/5 behind") {
		t.Fatalf("node behind the applied generation not marked:\n%s", b.String())
	}
}

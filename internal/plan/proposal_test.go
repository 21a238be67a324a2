package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func liveNetwork() *v1.ClusterNetwork {
	return &v1.ClusterNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: "default", ResourceVersion: "9"},
		Spec: v1.ClusterNetworkSpec{
			IPFamilies: []v1.IPFamily{v1.IPv4},
			PodNetwork: v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16"}},
			Routing:    &v1.Routing{Mode: v1.RoutingAuto},
		},
	}
}

func TestProposalFromPatch(t *testing.T) {
	cn, err := Proposal(liveNetwork(), "", `{"spec":{"routing":{"mode":"VXLAN"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if cn.Spec.Routing.Mode != v1.RoutingVXLAN || cn.Spec.PodNetwork.CIDRs[0] != "10.244.0.0/16" {
		t.Errorf("patch not merged onto the live spec: %+v", cn.Spec)
	}
	cn, err = Proposal(liveNetwork(), "", "spec:\n  routing: null\n")
	if err != nil || cn.Spec.Routing != nil {
		t.Errorf("a YAML merge patch with null removes the field: %v %+v", err, cn.Spec.Routing)
	}
}

func TestProposalFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cn.yaml")
	if err := os.WriteFile(f, []byte("apiVersion: plexus.dev/v1alpha1\nkind: ClusterNetwork\nmetadata: {name: default}\nspec:\n  ipFamilies: [IPv4]\n  podNetwork: {cidrs: [10.244.0.0/16]}\n  serviceNetwork: {cidrs: [10.96.0.0/16]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cn, err := Proposal(nil, f, "")
	if err != nil || cn.Spec.ServiceNetwork.CIDRs[0] != "10.96.0.0/16" {
		t.Fatalf("%v %+v", err, cn)
	}
}

func TestProposalRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.yaml")
	_ = os.WriteFile(typo, []byte("kind: ClusterNetwork\nspec:\n  podNetwrk: {}\n"), 0o600)
	other := filepath.Join(dir, "other.yaml")
	_ = os.WriteFile(other, []byte("kind: Service\n"), 0o600)
	for name, tc := range map[string]struct {
		live        *v1.ClusterNetwork
		file, patch string
		want        string
	}{
		"nothing":        {liveNetwork(), "", "", "say what to plan"},
		"both":           {liveNetwork(), typo, "{}", "exclude each other"},
		"unknown field":  {nil, typo, "", "podNetwrk"},
		"other kind":     {nil, other, "", "kind Service"},
		"patch, no live": {nil, "", "{}", "needs a live ClusterNetwork"},
		"patch typo":     {liveNetwork(), "", `{"spec":{"routng":{}}}`, "routng"},
		"missing file":   {nil, filepath.Join(dir, "none.yaml"), "", "none.yaml"},
	} {
		_, err := Proposal(tc.live, tc.file, tc.patch)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, tc.want)
		}
	}
}

package lab

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestLabDNSStaysInsideTheLab(t *testing.T) {
	if got, want := DefaultConfig("/repo").nodeResolvConf(), "nameserver 10.99.0.1\nnameserver fd10:99::1\n"; got != want {
		t.Fatalf("node resolv.conf = %q, want the lab's upstream only: %q", got, want)
	}
	args := strings.Join(DefaultConfig("/repo").dnsUpstreamArgs(), " ")
	for _, want := range []string{"-zone lab.plexus.test.", "-listen 10.99.0.1:53", "-listen [fd10:99::1]:53", "-host=gateway=10.99.0.1,fd10:99::1"} {
		if !strings.Contains(args, want) {
			t.Errorf("upstream command line %q lacks %q", args, want)
		}
	}
}

func TestKubeletUsesTheLabResolvConf(t *testing.T) {
	var kc map[string]any
	if err := yaml.Unmarshal([]byte(withLabResolvConf(kubeletConfig(&pki{dir: "/pki"}, DefaultConfig("/repo").NodeAt(1), "/plexus-lab/lab-node-1"), "/lab/nodes/lab-node-1")), &kc); err != nil {
		t.Fatal(err)
	}
	if kc["resolvConf"] != "/lab/nodes/lab-node-1/resolv.conf" || kc["clusterDomain"] != "cluster.local" {
		t.Fatalf("kubelet config resolvConf = %v (clusterDomain %v), want the node folder's resolv.conf", kc["resolvConf"], kc["clusterDomain"])
	}
}

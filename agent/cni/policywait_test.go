package cni

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePodIdentity(t *testing.T) {
	for _, c := range []struct {
		args string
		want podIdentity
	}{
		{"IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1234-5",
			podIdentity{"prod", "web-0", "1234-5"}},
		{"K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-0", podIdentity{"prod", "web-0", ""}},
		{"", podIdentity{}},
		{"K8S_POD_NAME", podIdentity{}},
	} {
		if got := parsePodIdentity(c.args); got != c.want {
			t.Errorf("parsePodIdentity(%q) = %+v, want %+v", c.args, got, c.want)
		}
	}
}

func TestPolicyTimeoutConfig(t *testing.T) {
	conf, err := ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"plexus","type":"plexus-cni"}`))
	if err != nil || conf.PolicyTimeout != DefaultPolicyTimeout {
		t.Fatalf("default PolicyTimeout = %v (%v), want %v", conf.PolicyTimeout, err, DefaultPolicyTimeout)
	}
	conf, err = ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"plexus","type":"plexus-cni","policyTimeoutSeconds":3}`))
	if err != nil || conf.PolicyTimeout != 3*time.Second {
		t.Fatalf("PolicyTimeout = %v (%v), want 3s", conf.PolicyTimeout, err)
	}
	_, err = ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"plexus","type":"plexus-cni","policyTimeoutSeconds":-1}`))
	if err == nil || !strings.Contains(err.Error(), `"policyTimeoutSeconds": -1 is out of range`) {
		t.Errorf("negative timeout: %v, want the field named", err)
	}
}

func TestNodeStatePolicySocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	st := NodeState{PodCIDRs: PodCIDRs{IPv4: mustPrefix("10.244.1.0/24")}, PolicySocket: "/run/plexus/policy.sock"}
	if err := WriteNodeState(path, st); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNodeState(path)
	if err != nil || got.PolicySocket != st.PolicySocket {
		t.Fatalf("ReadNodeState = %+v, %v; want the socket kept", got, err)
	}
	st.PolicySocket = "run/policy.sock"
	if err := WriteNodeState(path, st); err == nil || !strings.Contains(err.Error(), `"policySocket"`) {
		t.Errorf("relative socket path: %v, want the field named", err)
	}
}

package podnetwork

import (
	"context"
	"net/netip"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-net/plexus/agent/cni"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// podIfName is the interface the "runtime" asks for.
	podIfName = "eth0"
	// cniTimeout bounds one plugin invocation.
	cniTimeout = 30 * time.Second
)

// binaries are the programs under test, built once per run.
type binaries struct{ agent, cni string }

// build compiles plexus-agent and plexus-cni into a temporary directory (removed on cleanup).
func build(t *testing.T) binaries {
	t.Helper()
	dir := t.TempDir()
	b := binaries{agent: filepath.Join(dir, "plexus-agent"), cni: filepath.Join(dir, cni.PluginType)}
	for out, pkg := range map[string]string{
		b.agent: "github.com/plexus-net/plexus/cmd/plexus-agent",
		b.cni:   "github.com/plexus-net/plexus/cmd/plexus-cni",
	} {
		if msg, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	return b
}

// pod is a pod sandbox attached by plexus-cni.
type pod struct {
	name     string
	id       string
	ns       *testnet.Netns
	node     *node
	ip4, ip6 netip.Addr
}

// addPod creates a pod namespace on n and attaches it through libcni with the conflist the
// agent installed, exactly as a container runtime does.
func (n *node) addPod(t *testing.T, name string) *pod {
	t.Helper()
	p := &pod{name: name, id: "e2e-" + name, ns: testnet.NewNetns(t, "pod-"+name), node: n}
	list := n.conflist(t)
	var res *types100.Result
	err := n.inNode(func(ctx context.Context) error {
		r, err := n.runtime(t).AddNetworkList(ctx, list, p.runtimeConf())
		if err != nil {
			return err
		}
		res, err = types100.NewResultFromResult(r)
		return err
	})
	if err != nil {
		t.Fatalf("CNI ADD of pod %s on %s: %v", name, n.name, err)
	}
	for _, c := range res.IPs {
		ip, _ := netip.AddrFromSlice(c.Address.IP)
		if ip = ip.Unmap(); ip.Is4() {
			p.ip4 = ip
		} else {
			p.ip6 = ip
		}
	}
	if !p.ip4.IsValid() || !p.ip6.IsValid() {
		t.Fatalf("pod %s on %s got %v, want one IPv4 and one IPv6 address", name, n.name, res.IPs)
	}
	return p
}

func (p *pod) runtimeConf() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.id, NetNS: p.ns.Path(), IfName: podIfName}
}

// del runs CNI DEL for the pod.
func (p *pod) del(t *testing.T) {
	t.Helper()
	list := p.node.conflist(t)
	err := p.node.inNode(func(ctx context.Context) error {
		return p.node.runtime(t).DelNetworkList(ctx, list, p.runtimeConf())
	})
	if err != nil {
		t.Fatalf("CNI DEL of pod %s: %v", p.name, err)
	}
}

// addr returns the pod's address of the family.
func (p *pod) addr(v6 bool) netip.Addr {
	if v6 {
		return p.ip6
	}
	return p.ip4
}

// allocations lists the node's CNI allocation store.
func (n *node) allocations(t *testing.T) []cni.Allocation {
	t.Helper()
	s, err := cni.OpenStore(n.dataDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []cni.Allocation
	if err := s.WithLock(func() (err error) { out, err = s.List(); return err }); err != nil {
		t.Fatal(err)
	}
	return out
}

package cni

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/plexus-net/plexus/agent/policy/admit"
	"github.com/plexus-net/plexus/internal/testnet"
)

// Real-kernel tests of ADD's wait for NetworkPolicy: the real plugin binary through libcni, the
// agent's real admission server and tracker in this process, and a stand-in for the agent's sync
// loop that runs a policy round whenever the tracker asks for one.

// fakePolicyAgent is the agent's policy side: a Tracker on a socket and a sync loop over a fixed
// pod list (what the informer holds).
type fakePolicyAgent struct {
	tracker *admit.Tracker
	mu      sync.Mutex
	// linksAtSync records, per sync, whether a host veth of the node existed while the pending
	// pods were compiled: ADD must ask before it builds the interface.
	vethsAtSync []string
	rounds      int
}

// startPolicyAgent serves an admission socket at sock for node, with a sync loop over pods, and
// stops both when the test ends. serverTimeout bounds each request on the agent's side.
func startPolicyAgent(t *testing.T, node *testNode, sock string, pods []*corev1.Pod, serverTimeout time.Duration) *fakePolicyAgent {
	t.Helper()
	triggered := make(chan struct{}, 64)
	a := &fakePolicyAgent{tracker: admit.NewTracker(func() { triggered <- struct{}{} })}
	ln, err := admit.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- (&admit.Server{Tracker: a.tracker, Timeout: serverTimeout}).Serve(ctx, ln) }()
	handle := node.ns.NewHandle(t)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for {
			select {
			case <-triggered:
			case <-ctx.Done():
				return
			}
			links, _ := handle.LinkList()
			var veths []string
			for _, l := range links {
				if l.Type() == "veth" {
					veths = append(veths, l.Attrs().Name)
				}
			}
			round := a.tracker.Begin(pods)
			a.mu.Lock()
			a.vethsAtSync = append(a.vethsAtSync, veths...)
			a.rounds++
			a.mu.Unlock()
			round.Done(nil)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-loopDone
		if err := <-served; err != nil {
			t.Errorf("admission server: %v", err)
		}
	})
	return a
}

func k8sPod(ns, name, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: k8stypes.UID(uid)}}
}

// addK8sPod runs ADD with the CNI_ARGS a kubelet's runtime passes.
func (n *testNode) addK8sPod(pod *testnet.Netns, containerID, namespace, name, uid string) (*types100.Result, error) {
	rc := runtimeConf(pod.Path(), containerID)
	rc.Args = [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", namespace}, {"K8S_POD_NAME", name}, {"K8S_POD_UID", uid}}
	var res types.Result
	err := n.inNode(func(ctx context.Context) (err error) {
		res, err = n.rt.AddNetworkList(ctx, n.list, rc)
		return err
	})
	if err != nil {
		return nil, err
	}
	return types100.NewResultFromResult(res)
}

// policyState is the dual-stack node state with policy enforcement at sock ("" disables it).
func policyState(sock string) *NodeState {
	st := dualStackState(0)
	st.PolicySocket = sock
	return st
}

// TestAddWaitsForPolicyEnforcement: with enforcement on, ADD asks the agent for the pod named in
// CNI_ARGS at exactly the addresses it returns, before any interface of the pod exists, and
// returns only after the agent confirmed.
func TestAddWaitsForPolicyEnforcement(t *testing.T) {
	node := newTestNode(t, nil)
	sock := filepath.Join(t.TempDir(), "policy.sock")
	node.writeState(policyState(sock))
	agent := startPolicyAgent(t, node, sock, []*corev1.Pod{k8sPod("prod", "web-0", "uid-1")}, 10*time.Second)

	res, err := node.addK8sPod(node.newPod("pw"), "ctr-pw", "prod", "web-0", "uid-1")
	if err != nil {
		t.Fatalf("ADD with a confirming agent: %v", err)
	}
	v4, v6 := podAddrs(t, res)
	entries := agent.tracker.Pending().Snapshot()
	if len(entries) != 1 || entries[0].Pod != (admit.PodRef{Namespace: "prod", Name: "web-0", UID: "uid-1"}) ||
		!slices.Equal(entries[0].IPs, []netip.Addr{v4, v6}) {
		t.Fatalf("agent's pending pods = %+v, want prod/web-0 (uid-1) at %s, %s", entries, v4, v6)
	}
	agent.mu.Lock()
	defer agent.mu.Unlock()
	if agent.rounds == 0 {
		t.Fatal("ADD returned without a policy sync")
	}
	if len(agent.vethsAtSync) != 0 {
		t.Errorf("the pod's interface existed while its policy was compiled: %v", agent.vethsAtSync)
	}
}

// TestAddFailsClosedWhenPolicyIsNotConfirmed: an agent that cannot confirm (its cache has not seen
// the Pod) makes ADD fail with "try again later", leaving no address allocated and no interface.
func TestAddFailsClosedWhenPolicyIsNotConfirmed(t *testing.T) {
	node := newTestNode(t, nil)
	sock := filepath.Join(t.TempDir(), "policy.sock")
	node.writeState(policyState(sock))
	agent := startPolicyAgent(t, node, sock, nil, 500*time.Millisecond)

	_, err := node.addK8sPod(node.newPod("pf"), "ctr-pf", "prod", "web-0", "uid-1")
	if err == nil {
		t.Fatal("ADD succeeded although the agent never enforced the pod's policies")
	}
	ce := cniError(t, err)
	if ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg, "NetworkPolicy for pod prod/web-0 is not confirmed") ||
		!strings.Contains(ce.Msg, "has not seen the Pod object yet") {
		t.Errorf("ADD error = %d %q, want code %d saying the agent has not seen the pod", ce.Code, ce.Msg, types.ErrTryAgainLater)
	}
	node.requireNothingLeft(t, "ctr-pf")
	if n := agent.tracker.Pending().Len(); n != 0 {
		t.Errorf("the agent keeps %d pending pods after the ADD failed and freed the addresses", n)
	}
}

// TestAddFailsClosedWithoutAgent: enforcement on but no agent listening: ADD fails.
func TestAddFailsClosedWithoutAgent(t *testing.T) {
	node := newTestNode(t, nil)
	node.writeState(policyState(filepath.Join(t.TempDir(), "policy.sock")))
	_, err := node.addK8sPod(node.newPod("pn"), "ctr-pn", "prod", "web-0", "uid-1")
	if ce := cniError(t, err); ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg, "connect to the plexus agent") {
		t.Errorf("ADD error = %d %q, want code %d saying the agent is unreachable", ce.Code, ce.Msg, types.ErrTryAgainLater)
	}
	node.requireNothingLeft(t, "ctr-pn")
}

// TestAddDoesNotAskWhenPolicyIsOffOrPodUnnamed: without a policy socket in the node state, and for
// a sandbox without a Kubernetes pod name, ADD makes no request.
func TestAddDoesNotAskWhenPolicyIsOffOrPodUnnamed(t *testing.T) {
	node := newTestNode(t, nil)
	sock := filepath.Join(t.TempDir(), "policy.sock")
	agent := startPolicyAgent(t, node, sock, []*corev1.Pod{k8sPod("prod", "web-0", "")}, 10*time.Second)

	node.writeState(policyState(""))
	if _, err := node.addK8sPod(node.newPod("po"), "ctr-po", "prod", "web-0", ""); err != nil {
		t.Fatalf("ADD with enforcement off: %v", err)
	}
	node.writeState(policyState(sock))
	if _, err := node.add(node.newPod("pu"), "ctr-pu"); err != nil {
		t.Fatalf("ADD of an unnamed sandbox: %v", err)
	}
	if n := agent.tracker.Changes(); n != 0 {
		t.Errorf("the agent got %d requests, want none", n)
	}
}

// requireNothingLeft checks that a failed ADD left no allocation and no host veth.
func (n *testNode) requireNothingLeft(t *testing.T, containerID string) {
	t.Helper()
	if allocs := n.allocations(); len(allocs) != 0 {
		t.Errorf("failed ADD left allocations: %+v", allocs)
	}
	if _, err := n.ns.Handle().LinkByName(HostVethName(containerID, podIfName)); !errors.As(err, new(netlink.LinkNotFoundError)) {
		t.Errorf("failed ADD left host veth %s (lookup: %v)", HostVethName(containerID, podIfName), err)
	}
}

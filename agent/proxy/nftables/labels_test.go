package nftables

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/proxy"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

// TestLabelsStartAndStopProgramming drives one Proxier through label changes, as the agent's
// Tracker delivers them: a Service labelled for another proxy leaves the table (its ClusterIP is
// no longer touched) and comes back when the label goes; a Service whose only EndpointSlice is
// labelled headless rejects, and answers again when the label goes.
func TestLabelsStartAndStopProgramming(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	p := New(fake)
	tr := proxy.NewTracker(testNode)
	svc := pt.Service("ns", "web", []string{"10.96.0.10"}, pt.Port("p", corev1.ProtocolTCP, 80))
	slice := pt.Slice("ns", "web", "web-1", "p", corev1.ProtocolTCP, 8080, pt.EP{IP: "10.244.2.5", Node: "node-b"})
	tr.SetService(svc)
	tr.SetSlice(slice)
	client := packet{Src: ip(podA), Dst: ip("10.96.0.10"), Proto: "tcp", DPort: 80}
	step := func(name, want string) {
		t.Helper()
		m := tr.Model()
		syncFake(t, p, m)
		if got := newTracer(fake).Trace(client).String(); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
		assertEqualsFresh(t, fake, m)
	}
	step("programmed", "dnat 10.244.2.5:8080")

	other := svc.DeepCopy()
	other.Labels = map[string]string{proxy.LabelServiceProxyName: "someone-else"}
	tr.SetService(other)
	step("labelled for another proxy", "accept")
	tr.SetService(svc)
	step("label removed", "dnat 10.244.2.5:8080")

	headless := slice.DeepCopy()
	headless.Labels[proxy.LabelHeadless] = ""
	tr.SetSlice(headless)
	step("slice labelled headless", "reject")
	tr.SetSlice(slice)
	step("slice label removed", "dnat 10.244.2.5:8080")
}

// TestHealthCheckWithTerminatingLocalEndpoints: a node whose only local endpoint is terminating
// still forwards external traffic to it (the fallback) but its health check reports 0 local
// endpoints (503), so load balancers drain it.
func TestHealthCheckWithTerminatingLocalEndpoints(t *testing.T) {
	hc := &fakeHealth{}
	fake := knftables.NewFake(TableFamily, TableName)
	p := New(fake, WithHealthChecker(hc))
	terminating := pt.EP{IP: "10.244.1.8", Node: "node-a", NotReady: true, Terminating: true}
	w := fromNodeWorld(corev1.ServiceExternalTrafficPolicyLocal, []pt.EP{terminating}, nil)
	syncFake(t, p, w.model())
	if got := fmt.Sprint(hc.last); got != "map[32000:0]" {
		t.Errorf("health check ports %s, want map[32000:0]", got)
	}
	out := packet{Src: ip(remote), Dst: ip(nodeIP), Proto: "tcp", DPort: 30443}
	if got, want := newTracer(fake).Trace(out).String(), "dnat 10.244.1.8:8443"; got != want {
		t.Errorf("outside to the NodePort: %s, want %s (the terminating fallback)", got, want)
	}
	w = fromNodeWorld(corev1.ServiceExternalTrafficPolicyLocal, []pt.EP{{IP: "10.244.1.8", Node: "node-a"}}, nil)
	syncFake(t, p, w.model())
	if got := fmt.Sprint(hc.last); got != "map[32000:1]" {
		t.Errorf("health check ports with a ready local endpoint %s, want map[32000:1]", got)
	}
}

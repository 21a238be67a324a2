package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestCompilerMatchesCompile applies random edits to a small cluster, the
// way informers deliver them (a changed object is a new pointer, an
// unchanged one keeps its pointer), and checks after every edit that the
// incremental Compiler's model is exactly Compile's.
func TestCompilerMatchesCompile(t *testing.T) {
	for seed := uint64(1); seed <= 25; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := &clusterGen{rnd: rand.New(rand.NewPCG(seed, 7))}
			in := g.initial()
			c := NewCompiler()
			for step := 0; step < 120; step++ {
				what := g.edit(&in)
				checkSameModel(t, fmt.Sprintf("step %d (%s)", step, what), c.Compile(in), Compile(in))
				if t.Failed() {
					return
				}
			}
		})
	}
}

// TestCompilerSharedPeerErrors: equal unreadable ipBlocks in two policies
// are reported once, for the first policy, also when only the second one
// is compiled again.
func TestCompilerSharedPeerErrors(t *testing.T) {
	bad := []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"nonsense"}}}}
	first := np("a", "first", "x", ingressOnly, ingressRules(in(bad)), nil)
	second := func(p int) *networkingv1.NetworkPolicy {
		return np("a", "second", "x", ingressOnly, ingressRules(in(nil, port(tcp, 1)), in(bad, port(tcp, p))), nil)
	}
	c := NewCompiler()
	for i, input := range []Input{testInput(first, second(80)), testInput(first, second(81)), testInput(second(81))} {
		got, want := c.Compile(input), Compile(input)
		checkSameModel(t, fmt.Sprintf("input %d", i), got, want)
		if len(got.Errors) != 1 {
			t.Errorf("input %d: %d errors, want the shared one once: %v", i, len(got.Errors), got.Errors)
		}
	}
}

// TestCompilerReusesUnchangedPolicies: a pod no selector can match
// recompiles nothing; a changed policy only itself.
func TestCompilerReusesUnchangedPolicies(t *testing.T) {
	x := np("a", "x", "x", ingressOnly, ingressRules(in(peers(podPeer("y")), port(tcp, 80))), nil)
	w := np("c", "w", "", egressOnly, nil, egressRules(out(peers(nsPeer("b")))))
	input := testInput(x, w)
	c := NewCompiler()
	m1 := c.Compile(input)
	input.Pods = append(input.Pods, podObj("c", "new", "n2", map[string]string{"app": "unrelated"}, "10.1.9.9"))
	m2 := c.Compile(input)
	if m1.Policies[PolicyKey{"a", "x"}] != m2.Policies[PolicyKey{"a", "x"}] || m1.Policies[PolicyKey{"c", "w"}] != m2.Policies[PolicyKey{"c", "w"}] {
		t.Errorf("a pod no selector matches recompiled a policy")
	}
	input.Policies = []*networkingv1.NetworkPolicy{np("a", "x", "x", ingressOnly, ingressRules(in(peers(podPeer("y")), port(tcp, 81))), nil), w}
	m3 := c.Compile(input)
	if m3.Policies[PolicyKey{"c", "w"}] != m2.Policies[PolicyKey{"c", "w"}] {
		t.Errorf("an unchanged policy was recompiled")
	}
	checkSameModel(t, "changed policy", m3, Compile(input))
}

func checkSameModel(t *testing.T, what string, got, want *Model) {
	t.Helper()
	errStrings := func(errs []error) []string {
		var out []string
		for _, e := range errs {
			out = append(out, e.Error())
		}
		return out
	}
	if d := cmp.Diff(errStrings(want.Errors), errStrings(got.Errors)); d != "" {
		t.Errorf("%s: errors differ (-Compile +Compiler):\n%s", what, d)
	}
	opts := []cmp.Option{
		cmp.AllowUnexported(Model{}, AddrSet{}),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Errors" || p.String() == "addrs" }, cmp.Ignore()),
	}
	if d := cmp.Diff(want, got, opts...); d != "" {
		t.Errorf("%s: models differ (-Compile +Compiler):\n%s", what, d)
	}
	for _, p := range want.Pods {
		for _, a := range p.IPs {
			if g := got.PodByIP(a); g == nil || g.String() != want.PodByIP(a).String() {
				t.Errorf("%s: PodByIP(%s) = %v, want %s", what, a, g, want.PodByIP(a))
			}
		}
	}
}

func podObj(ns, name, node string, lbls map[string]string, ips ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c"}}},
	}
	for _, a := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: a})
	}
	return p
}

// clusterGen makes random clusters and edits over a few namespaces,
// labels and ports, so that selectors often match.
type clusterGen struct {
	rnd  *rand.Rand
	next int // fresh names and addresses
}

var (
	genNamespaces = []string{"a", "b", "c", "d"}
	genApps       = []string{"x", "y", "z"}
	genNodes      = []string{"n1", "n2"}
)

func (g *clusterGen) pick(s []string) string { return s[g.rnd.IntN(len(s))] }

func (g *clusterGen) initial() Input {
	in := Input{NodeName: "n1", NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.0.1")}}
	for _, ns := range genNamespaces {
		in.Namespaces = append(in.Namespaces, g.namespace(ns))
	}
	for range 12 {
		in.Pods = append(in.Pods, g.pod(g.pick(genNamespaces), ""))
	}
	for range 6 {
		in.Policies = append(in.Policies, g.policy(g.pick(genNamespaces), ""))
	}
	return in
}

func (g *clusterGen) namespace(name string) *corev1.Namespace {
	l := map[string]string{"team": g.pick([]string{"red", "blue"})}
	if g.rnd.IntN(2) == 0 {
		l["env"] = "prod"
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func (g *clusterGen) pod(ns, name string) *corev1.Pod {
	g.next++
	if name == "" {
		name = fmt.Sprintf("p%d", g.next)
	}
	n := g.next % 250
	var ips []string
	switch g.rnd.IntN(4) {
	case 0:
		ips = []string{fmt.Sprintf("10.1.0.%d", n)}
	case 1:
		ips = []string{fmt.Sprintf("fd01::%x", n)}
	case 2:
		ips = []string{fmt.Sprintf("10.1.0.%d", n), fmt.Sprintf("fd01::%x", n)}
	}
	p := podObj(ns, name, g.pick(genNodes), map[string]string{"app": g.pick(genApps)}, ips...)
	if g.rnd.IntN(8) == 0 {
		delete(p.Labels, "app")
	}
	switch g.rnd.IntN(12) {
	case 0:
		p.Spec.HostNetwork = true
	case 1:
		p.Status.Phase = corev1.PodSucceeded
	}
	for range g.rnd.IntN(3) {
		proto := corev1.Protocol(g.pick([]string{"TCP", "UDP", ""}))
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{
			Name: g.pick([]string{"http", "dns"}), ContainerPort: int32(8000 + g.rnd.IntN(3)), Protocol: proto,
		})
	}
	return p
}

func (g *clusterGen) selector() *metav1.LabelSelector {
	switch g.rnd.IntN(6) {
	case 0:
		return &metav1.LabelSelector{}
	case 1:
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{g.pick(genApps), g.pick(genApps)}}}}
	case 2:
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpDoesNotExist}}}
	case 3:
		if g.rnd.IntN(4) == 0 { // unreadable: an In without values
			return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn}}}
		}
	}
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": g.pick(genApps)}}
}

func (g *clusterGen) nsSelector() *metav1.LabelSelector {
	switch g.rnd.IntN(4) {
	case 0:
		return &metav1.LabelSelector{}
	case 1:
		return &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	}
	return &metav1.LabelSelector{MatchLabels: map[string]string{"team": g.pick([]string{"red", "blue"})}}
}

func (g *clusterGen) peers() []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for range g.rnd.IntN(3) {
		var p networkingv1.NetworkPolicyPeer
		switch g.rnd.IntN(4) {
		case 0:
			p.PodSelector = g.selector()
		case 1:
			p.NamespaceSelector = g.nsSelector()
		case 2:
			p.PodSelector, p.NamespaceSelector = g.selector(), g.nsSelector()
		default:
			b := &networkingv1.IPBlock{CIDR: g.pick([]string{"10.1.0.0/24", "fd01::/112", "10.1.0.0/28", "0.0.0.0/0"})}
			for range g.rnd.IntN(2) {
				b.Except = append(b.Except, g.pick([]string{"10.1.0.0/30", "fd01::/120", "10.1.0.8/29", "bad"}))
			}
			p.IPBlock = b
		}
		out = append(out, p)
	}
	return out
}

func (g *clusterGen) ports() []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for range g.rnd.IntN(3) {
		proto := corev1.Protocol(g.pick([]string{"TCP", "UDP", "SCTP", "TCP"}))
		if g.rnd.IntN(20) == 0 {
			proto = "ICMP"
		}
		p := networkingv1.NetworkPolicyPort{Protocol: &proto}
		switch g.rnd.IntN(4) {
		case 0:
			v := intstr.FromString(g.pick([]string{"http", "dns"}))
			p.Port = &v
		case 1:
			v := intstr.FromInt32(int32(8000 + g.rnd.IntN(3)))
			end := v.IntVal + int32(g.rnd.IntN(5))
			p.Port, p.EndPort = &v, &end
		case 2:
			v := intstr.FromInt32(int32(8000 + g.rnd.IntN(3)))
			p.Port = &v
		}
		out = append(out, p)
	}
	return out
}

func (g *clusterGen) policy(ns, name string) *networkingv1.NetworkPolicy {
	g.next++
	if name == "" {
		name = fmt.Sprintf("np%d", g.next)
	}
	p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	p.Spec.PodSelector = *g.selector()
	switch g.rnd.IntN(4) {
	case 1:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 2:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	case 3:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	}
	for range g.rnd.IntN(3) {
		p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: g.peers(), Ports: g.ports()})
	}
	for range g.rnd.IntN(3) {
		p.Spec.Egress = append(p.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: g.peers(), Ports: g.ports()})
	}
	return p
}

// edit changes in as one informer event would and says what it did.
func (g *clusterGen) edit(in *Input) string {
	in.Pods = append([]*corev1.Pod(nil), in.Pods...)
	in.Policies = append([]*networkingv1.NetworkPolicy(nil), in.Policies...)
	in.Namespaces = append([]*corev1.Namespace(nil), in.Namespaces...)
	switch k := g.rnd.IntN(13); {
	case k < 2 || len(in.Pods) == 0:
		in.Pods = append(in.Pods, g.pod(g.pick(genNamespaces), ""))
		return "pod added"
	case k < 3:
		i := g.rnd.IntN(len(in.Pods))
		in.Pods = append(in.Pods[:i], in.Pods[i+1:]...)
		return "pod removed"
	case k < 5:
		i := g.rnd.IntN(len(in.Pods))
		p := in.Pods[i].DeepCopy()
		p.Labels = map[string]string{"app": g.pick(genApps)}
		in.Pods[i] = p
		return "pod relabelled"
	case k < 6:
		i := g.rnd.IntN(len(in.Pods))
		in.Pods[i] = g.pod(in.Pods[i].Namespace, in.Pods[i].Name)
		return "pod replaced (addresses, ports, node, phase)"
	case k < 7:
		i := g.rnd.IntN(len(in.Pods))
		p := in.Pods[i].DeepCopy()
		p.Annotations = map[string]string{"seen": "now"}
		in.Pods[i] = p
		return "pod updated, nothing the model reads"
	case k < 8:
		i := g.rnd.IntN(len(in.Namespaces))
		in.Namespaces[i] = g.namespace(in.Namespaces[i].Name)
		return "namespace relabelled"
	case k < 9 && len(in.Namespaces) > 1:
		i := g.rnd.IntN(len(in.Namespaces))
		in.Namespaces = append(in.Namespaces[:i], in.Namespaces[i+1:]...)
		return "namespace object gone (pods stay)"
	case k < 9:
		in.Namespaces = append(in.Namespaces, g.namespace(g.pick(genNamespaces)))
		return "namespace object back"
	case k < 10 || len(in.Policies) == 0:
		in.Policies = append(in.Policies, g.policy(g.pick(genNamespaces), ""))
		return "policy added"
	case k < 11:
		i := g.rnd.IntN(len(in.Policies))
		in.Policies = append(in.Policies[:i], in.Policies[i+1:]...)
		return "policy removed"
	case k < 12:
		i := g.rnd.IntN(len(in.Policies))
		in.Policies[i] = g.policy(in.Policies[i].Namespace, in.Policies[i].Name)
		return "policy changed"
	default:
		i := g.rnd.IntN(len(in.Policies))
		p := in.Policies[i].DeepCopy()
		p.UID, p.ResourceVersion = types.UID(fmt.Sprint("uid-", p.Name)), "1"
		in.Policies[i] = p
		return "policy copied, same version"
	}
}

package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The test cluster: nodes node-b and node-c; namespaces default and prod (env=prod); pods
// default/client (node-b), default/frontend (app=frontend, node-b), prod/web (app=web, node-c,
// named port http=8080), prod/db (node-b), a host-network pod and a pending one.

func pod(ns, name, node string, lbls map[string]string, ips ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	return p
}

func testCluster(policies ...*networkingv1.NetworkPolicy) *Cluster {
	web := pod("prod", "web", "node-c", map[string]string{"app": "web"}, "10.244.2.7", "fd10:244:0:2::7")
	web.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
	host := pod("kube-system", "proxy", "node-b", nil, "10.99.0.2")
	host.Spec.HostNetwork = true
	return &Cluster{
		Pods: []*corev1.Pod{
			pod("default", "client", "node-b", map[string]string{"app": "client"}, "10.244.1.5", "fd10:244:0:1::5"),
			pod("default", "frontend", "node-b", map[string]string{"app": "frontend"}, "10.244.1.6"),
			web,
			pod("prod", "db", "node-b", map[string]string{"app": "db"}, "10.244.1.9"),
			pod("default", "pending", "", nil),
			host,
		},
		Namespaces: []*corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: "default", Labels: map[string]string{"kubernetes.io/metadata.name": "default"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"env": "prod", "kubernetes.io/metadata.name": "prod"}}},
		},
		Nodes: []*corev1.Node{
			{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.99.0.2"}}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "node-c"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.99.0.3"}}}},
		},
		Services: []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web"},
			Spec: corev1.ServiceSpec{ClusterIPs: []string{"10.96.0.20", "fd00:10:96::20"}}}},
		Policies: policies,
	}
}

func np(ns, name string, sel map[string]string, types []networkingv1.PolicyType, in []networkingv1.NetworkPolicyIngressRule, eg []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}, PolicyTypes: types, Ingress: in, Egress: eg},
	}
}

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	tcp         = corev1.ProtocolTCP
)

func port(p intstr.IntOrString) []networkingv1.NetworkPolicyPort {
	return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p}}
}

func denyAll(ns string) *networkingv1.NetworkPolicy {
	return np(ns, "deny-all", nil, ingressOnly, nil, nil)
}

func allowFrontend() *networkingv1.NetworkPolicy {
	return np("prod", "allow-frontend", map[string]string{"app": "web"}, ingressOnly, []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "frontend"}}, NamespaceSelector: &metav1.LabelSelector{}}},
		Ports: port(intstr.FromInt32(80)),
	}}, nil)
}

func TestRun(t *testing.T) {
	fromProd := np("prod", "from-prod", map[string]string{"app": "db"}, ingressOnly, []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}},
	}}, nil)
	fromDefault := np("prod", "from-default", map[string]string{"app": "db"}, ingressOnly, []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "default"}}}},
	}}, nil)
	namedHTTP := np("prod", "http", map[string]string{"app": "web"}, ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: port(intstr.FromString("http"))}}, nil)
	egressBlock := np("default", "egress-block", map[string]string{"app": "client"}, egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{
		To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}}},
	}})
	egressDeny := np("default", "no-egress", nil, egressOnly, nil, nil)

	cases := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		src, dst string
		port     string
		want     string // Verdict
		contains []string
	}{
		{"no policy: not isolated", nil, "default/client", "prod/web", "80/tcp", "ALLOW",
			[]string{"egress  default/client: not isolated -> allow", "ingress prod/web: not isolated -> allow"}},
		{"default deny ingress", []*networkingv1.NetworkPolicy{denyAll("prod")}, "default/client", "prod/web", "80/tcp", "DENY",
			[]string{"ingress prod/web: isolated by prod/deny-all", "no ingress rule of these policies matches -> deny"}},
		{"allowed by pod and namespace selector", []*networkingv1.NetworkPolicy{denyAll("prod"), allowFrontend()}, "default/frontend", "prod/web", "tcp/80", "ALLOW",
			[]string{"isolated by prod/allow-frontend, prod/deny-all", "prod/allow-frontend ingress rule 0 matches (from podSelector app=frontend in namespaceSelector {} (all namespaces), port tcp/80) -> allow"}},
		{"selector peer does not match the client", []*networkingv1.NetworkPolicy{denyAll("prod"), allowFrontend()}, "default/client", "prod/web", "80/tcp", "DENY", nil},
		{"selector peer but wrong port", []*networkingv1.NetworkPolicy{denyAll("prod"), allowFrontend()}, "default/frontend", "prod/web", "81/tcp", "DENY", nil},
		{"namespaceSelector allows its namespace", []*networkingv1.NetworkPolicy{fromDefault}, "default/client", "prod/db", "5432", "ALLOW",
			[]string{"prod/from-default ingress rule 0 matches (from namespaceSelector kubernetes.io/metadata.name=default, any port)"}},
		{"namespaceSelector of another namespace", []*networkingv1.NetworkPolicy{fromProd}, "default/client", "prod/db", "5432/tcp", "DENY", nil},
		{"named port resolves on the destination", []*networkingv1.NetworkPolicy{namedHTTP}, "default/client", "prod/web", "8080/tcp", "ALLOW",
			[]string{"prod/http ingress rule 0 matches (from anywhere, port tcp/http)"}},
		{"named port: another number is denied", []*networkingv1.NetworkPolicy{namedHTTP}, "default/client", "prod/web", "80/tcp", "DENY", nil},
		{"named port: the protocol must match", []*networkingv1.NetworkPolicy{namedHTTP}, "default/client", "prod/web", "8080/udp", "DENY", nil},
		{"ipBlock allows its block", []*networkingv1.NetworkPolicy{egressBlock}, "default/client", "203.0.113.9", "443/tcp", "ALLOW",
			[]string{"default/egress-block egress rule 0 matches (to ipBlock 203.0.113.0/24 except 203.0.113.128/25, any port)", "ingress 203.0.113.9: not a pod of the cluster"}},
		{"ipBlock except is denied", []*networkingv1.NetworkPolicy{egressBlock}, "default/client", "203.0.113.200", "443/tcp", "DENY",
			[]string{"egress  default/client: isolated by default/egress-block", "no egress rule of these policies matches -> deny"}},
		{"egress deny", []*networkingv1.NetworkPolicy{egressDeny}, "default/client", "prod/web", "80/tcp", "DENY",
			[]string{"egress  default/client: isolated by default/no-egress"}},
		{"egress deny of another namespace does not apply", []*networkingv1.NetworkPolicy{egressDeny}, "prod/db", "prod/web", "80/tcp", "ALLOW", nil},
		{"an IP destination that is a pod's is traced as that pod", []*networkingv1.NetworkPolicy{denyAll("prod")}, "default/client", "10.244.2.7", "80/tcp", "DENY",
			[]string{"-> prod/web (10.244.2.7, node-c) tcp/80"}},
		{"IPv6 destination picks the source's IPv6 address", nil, "default/client", "fd10:244:0:2::7", "80/tcp", "ALLOW",
			[]string{"default/client (fd10:244:0:1::5, node-b) -> prod/web (fd10:244:0:2::7, node-c)"}},
		{"same node", []*networkingv1.NetworkPolicy{denyAll("prod")}, "default/client", "prod/db", "80/udp", "DENY",
			[]string{"(10.244.1.9, node-b) udp/80"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := ParseQuery(c.src, c.dst, c.port)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Run(testCluster(c.policies...), q)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			Format(&out, r)
			if r.Verdict != c.want || r.Allowed() != (c.want == "ALLOW") {
				t.Errorf("verdict %s, want %s:\n%s", r.Verdict, c.want, out.String())
			}
			if !strings.HasSuffix(out.String(), "verdict "+c.want+"\n") {
				t.Errorf("output does not end with the verdict:\n%s", out.String())
			}
			for _, s := range c.contains {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func TestFormatExact(t *testing.T) {
	q, _ := ParseQuery("default/frontend", "prod/web", "80/tcp")
	r, err := Run(testCluster(denyAll("prod"), allowFrontend()), q)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	Format(&out, r)
	want := `flow    default/frontend (10.244.1.6, node-b) -> prod/web (10.244.2.7, node-c) tcp/80
egress  default/frontend: not isolated -> allow
ingress prod/web: isolated by prod/allow-frontend, prod/deny-all
        prod/allow-frontend ingress rule 0 matches (from podSelector app=frontend in namespaceSelector {} (all namespaces), port tcp/80) -> allow
verdict ALLOW
`
	if out.String() != want {
		t.Errorf("Format:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := FormatJSON(&out, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not read back: %v\n%s", err, out.String())
	}
	if back.Verdict != "ALLOW" || back.Ingress == nil || back.Ingress.Policy != "prod/allow-frontend" || back.Ingress.Rule != 0 ||
		back.Egress.Rule != -1 || len(back.Ingress.IsolatedBy) != 2 || back.Src.Node != "node-b" {
		t.Errorf("JSON report = %s", out.String())
	}
}

func TestInputErrors(t *testing.T) {
	for _, c := range []struct {
		src, dst, port string
		want           string
	}{
		{"default/nobody", "prod/web", "80/tcp", "source pod default/nobody not found"},
		{"default/client", "prod/nobody", "80/tcp", "destination pod prod/nobody not found"},
		{"default/pending", "prod/web", "80/tcp", "source pod default/pending has no IP address yet"},
		{"kube-system/proxy", "prod/web", "80/tcp", "source pod kube-system/proxy uses the host network"},
		{"default/client", "kube-system/proxy", "80/tcp", "destination pod kube-system/proxy uses the host network"},
		{"default/frontend", "fd10::1", "80/tcp", "source pod default/frontend has no IPv6 address"},
		{"default/frontend", "prod/web", "80/tcp/x", `port "80/tcp/x"`},
		{"default/client", "prod/web", "80/icmp", `protocol "icmp" is not tcp, udp or sctp`},
		{"default/client", "prod/web", "0/tcp", "a port 1-65535"},
		{"default/client", "prod/web", "http/tcp", "a port 1-65535"},
		{"client", "prod/web", "80/tcp", `source "client": want <namespace>/<pod>`},
		{"default/client", "fd00:10:96::20", "80/tcp", "is an address of Service prod/web: NetworkPolicy sees the endpoint"},
		{"default/client", "web", "80/tcp", `destination "web": want <namespace>/<pod> or an IP address`},
	} {
		q, err := ParseQuery(c.src, c.dst, c.port)
		if err == nil {
			_, err = Run(testCluster(), q)
		}
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("trace %s %s %s: %v, want an input error containing %q", c.src, c.dst, c.port, err, c.want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/plexus-net/plexus/internal/controlplane"
	"github.com/plexus-net/plexus/internal/trace"
)

// TestTraceAgainstAPIServer runs plexusctl trace as a user does (a kubeconfig, the real client)
// against a real kube-apiserver holding namespaces, pods with status IPs, nodes and policies, and
// checks its output and exit code.
func TestTraceAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	dir := controlplane.AssetsDir()
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		t.Fatalf("no kube-apiserver in %s: run `make controlplane` first", dir)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: dir}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.AddUser(envtest.User{Name: "trace-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigData, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kubeconfigData, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := trace.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seedTraceCluster(ctx, t, c)

	tcp := corev1.ProtocolTCP
	portOf := func(p intstr.IntOrString) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p}}
	}
	policy := func(ns, name string, sel map[string]string, types []networkingv1.PolicyType, in []networkingv1.NetworkPolicyIngressRule, eg []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}, PolicyTypes: types, Ingress: in, Egress: eg}}
	}
	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egress := []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	denyAll := policy("prod", "deny-all", nil, ingress, nil, nil)

	cases := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		args     []string
		wantCode int
		want     []string
	}{
		{"not isolated", nil, []string{"default/client", "prod/web", "80/tcp"}, traceAllowed,
			[]string{"flow    default/client (10.244.1.5, node-b) -> prod/web (10.244.2.7, node-c) tcp/80",
				"egress  default/client: not isolated -> allow", "ingress prod/web: not isolated -> allow", "verdict ALLOW"}},
		{"default deny", []*networkingv1.NetworkPolicy{denyAll}, []string{"default/client", "prod/web", "80/tcp"}, traceDenied,
			[]string{"ingress prod/web: isolated by prod/deny-all", "no ingress rule of these policies matches -> deny", "verdict DENY"}},
		{"allow by namespaceSelector", []*networkingv1.NetworkPolicy{denyAll, policy("prod", "from-team-a", map[string]string{"app": "web"}, ingress,
			[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}}}}}, nil)},
			[]string{"default/client", "prod/web", "80/tcp"}, traceAllowed,
			[]string{"ingress prod/web: isolated by prod/deny-all, prod/from-team-a",
				"prod/from-team-a ingress rule 0 matches (from namespaceSelector team=a, any port) -> allow", "verdict ALLOW"}},
		{"named port", []*networkingv1.NetworkPolicy{policy("prod", "http-only", map[string]string{"app": "web"}, ingress,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: portOf(intstr.FromString("http"))}}, nil)},
			[]string{"default/client", "prod/web", "8080/tcp"}, traceAllowed,
			[]string{"prod/http-only ingress rule 0 matches (from anywhere, port tcp/http) -> allow"}},
		{"named port, other number", []*networkingv1.NetworkPolicy{policy("prod", "http-only", map[string]string{"app": "web"}, ingress,
			[]networkingv1.NetworkPolicyIngressRule{{Ports: portOf(intstr.FromString("http"))}}, nil)},
			[]string{"default/client", "prod/web", "80/tcp"}, traceDenied, []string{"verdict DENY"}},
		{"ipBlock except", []*networkingv1.NetworkPolicy{policy("default", "egress-block", map[string]string{"app": "client"}, egress, nil,
			[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}}}}})},
			[]string{"default/client", "203.0.113.200", "443/tcp"}, traceDenied,
			[]string{"egress  default/client: isolated by default/egress-block", "no egress rule of these policies matches -> deny",
				"ingress 203.0.113.200: not a pod of the cluster", "verdict DENY"}},
		{"ipBlock inside", []*networkingv1.NetworkPolicy{policy("default", "egress-block", map[string]string{"app": "client"}, egress, nil,
			[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}}}}})},
			[]string{"default/client", "203.0.113.9", "443/tcp"}, traceAllowed,
			[]string{"default/egress-block egress rule 0 matches (to ipBlock 203.0.113.0/24 except 203.0.113.128/25, any port) -> allow"}},
		{"egress deny", []*networkingv1.NetworkPolicy{policy("default", "no-egress", nil, egress, nil, nil)},
			[]string{"default/client", "prod/web", "80/tcp"}, traceDenied,
			[]string{"egress  default/client: isolated by default/no-egress", "ingress prod/web: not isolated -> allow", "verdict DENY"}},
		{"pod not found", nil, []string{"default/nobody", "prod/web", "80/tcp"}, traceBadInput,
			[]string{"source pod default/nobody not found"}},
		{"pod without IPs", nil, []string{"default/client", "prod/starting", "80/tcp"}, traceBadInput,
			[]string{"destination pod prod/starting has no IP address yet"}},
		{"host-network pod", nil, []string{"kube-system/hostnet", "prod/web", "80/tcp"}, traceBadInput,
			[]string{"source pod kube-system/hostnet uses the host network"}},
		{"bad protocol", nil, []string{"default/client", "prod/web", "80/icmp"}, traceBadInput,
			[]string{`protocol "icmp" is not tcp, udp or sctp`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.policies {
				p = p.DeepCopy()
				if err := c.Create(ctx, p); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Delete(context.Background(), p) })
			}
			var stdout, stderr bytes.Buffer
			code := traceCommand(append([]string{"--kubeconfig", kubeconfig}, tc.args...), &stdout, &stderr, connectTrace)
			out := stdout.String() + stderr.String()
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tc.wantCode, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("service address", func(t *testing.T) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}
		if err := c.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := traceCommand([]string{"--kubeconfig", kubeconfig, "default/client", svc.Spec.ClusterIP, "80/tcp"}, &stdout, &stderr, connectTrace)
		if want := "is an address of Service prod/web"; code != traceBadInput || !strings.Contains(stderr.String(), want) {
			t.Errorf("trace to ClusterIP %s: exit %d, output %q; want exit %d and %q", svc.Spec.ClusterIP, code, stdout.String()+stderr.String(), traceBadInput, want)
		}
	})

	t.Run("json", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := traceCommand([]string{"default/client", "prod/web", "80/tcp", "-o", "json", "--kubeconfig", kubeconfig}, &stdout, &stderr, connectTrace)
		var r trace.Report
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || code != traceAllowed {
			t.Fatalf("exit %d, JSON %v:\n%s%s", code, err, stdout.String(), stderr.String())
		}
		if r.Verdict != "ALLOW" || r.Src.Node != "node-b" || r.Dst.Pod != "prod/web" || r.Ingress == nil || r.Egress == nil {
			t.Errorf("report = %+v", r)
		}
	})
}

// seedTraceCluster creates the namespaces (default is labelled team=a), two nodes and the pods,
// setting the pods' IPs through the status subresource as the kubelet does.
func seedTraceCluster(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"env": "prod"}}},
	} {
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	def := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: "default"}, def); err != nil {
		t.Fatal(err)
	}
	def.Labels["team"] = "a"
	if err := c.Update(ctx, def); err != nil {
		t.Fatal(err)
	}
	for name, ip := range map[string]string{"node-b": "10.99.0.2", "node-c": "10.99.0.3"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := c.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
		if err := c.Status().Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []struct {
		ns, name, node string
		labels         map[string]string
		ips            []string
		hostNet        bool
	}{
		{"default", "client", "node-b", map[string]string{"app": "client"}, []string{"10.244.1.5"}, false},
		{"prod", "web", "node-c", map[string]string{"app": "web"}, []string{"10.244.2.7"}, false},
		{"prod", "starting", "node-c", map[string]string{"app": "web"}, nil, false},
		{"kube-system", "hostnet", "node-b", nil, []string{"10.99.0.2"}, true},
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name, Labels: p.labels},
			Spec: corev1.PodSpec{NodeName: p.node, HostNetwork: p.hostNet, Containers: []corev1.Container{{
				Name: "main", Image: "app",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			}}},
		}
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if len(p.ips) == 0 {
			continue
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP = p.ips[0]
		for _, ip := range p.ips {
			pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
		}
		if err := c.Status().Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
}

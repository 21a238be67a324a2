package lab

import (
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func lbService(ns, name string, typ corev1.ServiceType, ips ...string) corev1.Service {
	s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Type: typ}}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func TestAssignLoadBalancerIPs(t *testing.T) {
	pool := netip.MustParsePrefix("10.99.2.240/28")
	other := lbService("a", "classed", corev1.ServiceTypeLoadBalancer)
	other.Spec.LoadBalancerClass = ptrTo("example.com/other")
	got := AssignLoadBalancerIPs(pool, []corev1.Service{
		lbService("b", "second", corev1.ServiceTypeLoadBalancer),
		lbService("a", "held", corev1.ServiceTypeLoadBalancer, "10.99.2.241"),
		lbService("a", "first", corev1.ServiceTypeLoadBalancer),
		lbService("a", "plain", corev1.ServiceTypeClusterIP),
		other,
	})
	want := "[{a/first 10.99.2.242} {b/second 10.99.2.243}]"
	if fmt.Sprint(got) != want {
		t.Fatalf("assigned %v, want %v (held address kept, ClusterIP and other classes skipped)", got, want)
	}
}

func TestAssignLoadBalancerIPsStopsAtTheBroadcast(t *testing.T) {
	pool := netip.MustParsePrefix("10.99.2.240/30") // .241 and .242 usable
	var svcs []corev1.Service
	for i := range 4 {
		svcs = append(svcs, lbService("a", fmt.Sprintf("s%d", i), corev1.ServiceTypeLoadBalancer))
	}
	got := AssignLoadBalancerIPs(pool, svcs)
	if fmt.Sprint(got) != "[{a/s0 10.99.2.241} {a/s1 10.99.2.242}]" {
		t.Fatalf("assigned %v, want two addresses and no network or broadcast address", got)
	}
}

func TestLoadBalancerPoolIsAboveTheNodes(t *testing.T) {
	c := NamedConfig("/repo", "x", 2)
	if got := c.LoadBalancerPool().String(); got != "10.99.2.240/28" {
		t.Fatalf("pool %s, want 10.99.2.240/28", got)
	}
	for i := 1; i <= 16; i++ {
		if c.LoadBalancerPool().Contains(c.NodeAt(i).IPv4) {
			t.Fatalf("pool %s holds node %d's address %s", c.LoadBalancerPool(), i, c.NodeAt(i).IPv4)
		}
	}
	for bits, want := range map[int]string{26: "10.99.2.192/26", 25: "10.99.2.128/25", 20: "10.99.2.128/25", 30: "10.99.2.252/30"} {
		c.LoadBalancerPoolBits = bits
		if got := c.LoadBalancerPool().String(); got != want {
			t.Errorf("LoadBalancerPoolBits %d: pool %s, want %s", bits, got, want)
		}
	}
	c.LoadBalancerPoolBits = 25
	for i := 1; i <= 100; i++ {
		if c.LoadBalancerPool().Contains(c.NodeAt(i).IPv4) {
			t.Fatalf("pool %s holds node %d's address %s", c.LoadBalancerPool(), i, c.NodeAt(i).IPv4)
		}
	}
}

// Package proxytest builds Services and EndpointSlices for tests of the
// proxy model and its backends, in a few readable lines.
package proxytest

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Service returns a ClusterIP Service namespace/name with the given cluster
// IPs (first is primary) and ports "proto/port" pairs, e.g. ("tcp", 80).
// Change the returned object with the With* helpers or directly.
func Service(namespace, name string, clusterIPs []string, ports ...corev1.ServicePort) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			ClusterIPs: clusterIPs,
			Ports:      ports,
		},
	}
	if len(clusterIPs) > 0 {
		svc.Spec.ClusterIP = clusterIPs[0]
	}
	return svc
}

// Port returns a service port.
func Port(name string, proto corev1.Protocol, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: port}
}

// NodePortPort returns a service port with a node port.
func NodePortPort(name string, proto corev1.Protocol, port, nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: port, NodePort: nodePort}
}

// EP describes one endpoint for Slice.
type EP struct {
	// IP is the endpoint's address.
	IP string
	// Node is its nodeName.
	Node string
	// NotReady, Terminating and NotServing set the conditions (default:
	// ready, serving, not terminating).
	NotReady, Terminating, NotServing bool
	// Zones are zone hints.
	Zones []string
}

// Slice returns an EndpointSlice of svc's namespace/name for the family of
// the first endpoint (IPv4 when none) with one port (name, proto, port).
func Slice(namespace, service, sliceName string, portName string, proto corev1.Protocol, port int32, eps ...EP) *discoveryv1.EndpointSlice {
	at := discoveryv1.AddressTypeIPv4
	if len(eps) > 0 && netip.MustParseAddr(eps[0].IP).Is6() {
		at = discoveryv1.AddressTypeIPv6
	}
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: sliceName,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: at,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Protocol: ptr.To(proto), Port: ptr.To(port)}},
	}
	for _, e := range eps {
		ep := discoveryv1.Endpoint{
			Addresses: []string{e.IP},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(!e.NotReady),
				Serving:     ptr.To(!e.NotServing),
				Terminating: ptr.To(e.Terminating),
			},
		}
		if e.Node != "" {
			ep.NodeName = ptr.To(e.Node)
		}
		if len(e.Zones) > 0 {
			ep.Hints = &discoveryv1.EndpointHints{}
			for _, z := range e.Zones {
				ep.Hints.ForZones = append(ep.Hints.ForZones, discoveryv1.ForZone{Name: z})
			}
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	return s
}

// Scale returns n ClusterIP services "ns/svc-<i>" with one TCP port 80 each,
// cluster IPs from 10.96.0.0/16 upwards (n ≤ 65000), and for each a slice
// of perService endpoints in 10.244.0.0/15 on target port 8080, spread over
// two nodes "node-a" and "node-b". For benchmarks and scale tests.
func Scale(n, perService int) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	svcs := make([]*corev1.Service, 0, n)
	slices := make([]*discoveryv1.EndpointSlice, 0, n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%d", i)
		ip := fmt.Sprintf("10.96.%d.%d", (i+1)/256, (i+1)%256)
		svcs = append(svcs, Service("ns", name, []string{ip}, Port("http", corev1.ProtocolTCP, 80)))
		eps := make([]EP, perService)
		for j := range eps {
			k := i*perService + j + 1
			eps[j] = EP{IP: fmt.Sprintf("10.%d.%d.%d", 244+k>>16, k>>8&255, k&255), Node: []string{"node-a", "node-b"}[j%2]}
		}
		slices = append(slices, Slice("ns", name, name+"-1", "http", corev1.ProtocolTCP, 8080, eps...))
	}
	return svcs, slices
}

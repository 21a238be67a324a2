package translate

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Builders of test objects; times are minutes after a fixed epoch so ages are explicit.

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const controller = "plexus.dev/ingress"

func ingressClass(name string, isDefault bool) networkingv1.IngressClass {
	c := networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       networkingv1.IngressClassSpec{Controller: controller},
	}
	if isDefault {
		c.Annotations = map[string]string{annotationDefaultClass: "true"}
	}
	return c
}

// ing makes an Ingress of class plexus created ageMinutes after the epoch.
func ing(ns, name string, ageMinutes int, rules ...networkingv1.IngressRule) networkingv1.Ingress {
	class := "plexus"
	return networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(ageMinutes) * time.Minute))},
		Spec:       networkingv1.IngressSpec{IngressClassName: &class, Rules: rules},
	}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
		HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths},
	}}
}

func path(kind networkingv1.PathType, p string, b networkingv1.IngressBackend) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: &kind, Backend: b}
}

func prefix(p string, b networkingv1.IngressBackend) networkingv1.HTTPIngressPath {
	return path(networkingv1.PathTypePrefix, p, b)
}

func exact(p string, b networkingv1.IngressBackend) networkingv1.HTTPIngressPath {
	return path(networkingv1.PathTypeExact, p, b)
}

// svcPort is a backend by Service port number, svcNamedPort by port name.
func svcPort(name string, port int32) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: port}}}
}

func svcNamedPort(name, port string) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Name: port}}}
}

// service makes a ClusterIP Service with one TCP port named portName (port → targetPort).
func service(ns, name, portName string, port, target int32) corev1.Service {
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: portName, Port: port, TargetPort: intstr.FromInt32(target), Protocol: corev1.ProtocolTCP,
		}}},
	}
}

// endpoint is one address of a slice; ready false marks it not ready.
type endpoint struct {
	ip    string
	ready bool
}

func slice(ns, svc, sliceName, portName string, port int32, eps ...endpoint) discoveryv1.EndpointSlice {
	proto := corev1.ProtocolTCP
	es := discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: sliceName, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	for _, e := range eps {
		ready := e.ready
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return es
}

func tlsSecret(ns, name string, certPEM, keyPEM []byte) corev1.Secret {
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}
}

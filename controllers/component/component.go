// Package component names the parts of Plexus the operator manages and the labels that mark every
// object it writes. Render puts the labels on; apply-and-prune selects on them; both read them here
// so that the two can never disagree.
package component

import "sigs.k8s.io/controller-runtime/pkg/client"

// Label keys Plexus sets (the recommended app.kubernetes.io labels).
const (
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
)

// ManagedBy is the value of LabelManagedBy on everything Plexus writes; PartOf the value of
// LabelPartOf.
const (
	ManagedBy = "plexus"
	PartOf    = "plexus"
)

// Names of the managed components: the value of LabelComponent on their objects.
const (
	// Agent is the node agent: its DaemonSet and its status admission policy.
	Agent = "agent"
	// DNS is the cluster DNS: CoreDNS, its Corefile, RBAC and the kube-dns Service.
	DNS = "dns"
	// Ingress is the ingress controller: plexus-ingress, its RBAC, Service and IngressClass.
	Ingress = "ingress"
)

// Labels returns the labels every object of a component carries.
func Labels(name string) map[string]string {
	return map[string]string{LabelName: "plexus-" + name, LabelComponent: name, LabelPartOf: PartOf, LabelManagedBy: ManagedBy}
}

// Selector selects the objects of a component: the labels prune lists by.
func Selector(name string) client.MatchingLabels {
	return client.MatchingLabels{LabelComponent: name, LabelManagedBy: ManagedBy}
}

// Owns reports whether labels mark an object of the named component.
func Owns(name string, labels map[string]string) bool {
	return labels[LabelComponent] == name && labels[LabelManagedBy] == ManagedBy
}

package translate

import (
	"sort"

	networkingv1 "k8s.io/api/networking/v1"
)

const (
	// annotationIngressClass is the class annotation that predates spec.ingressClassName.
	annotationIngressClass = "kubernetes.io/ingress.class"
	// annotationDefaultClass marks the IngressClass used by Ingresses that name none.
	annotationDefaultClass = "ingressclass.kubernetes.io/is-default-class"
)

// servedIngresses returns the Ingresses of the classes whose controller is controllerName, oldest
// first (creationTimestamp, then namespace/name): the order in which conflicts are decided.
func servedIngresses(classes []networkingv1.IngressClass, ingresses []networkingv1.Ingress, controllerName string) []*networkingv1.Ingress {
	ours := map[string]bool{}
	defaultIsOurs := false
	for i := range classes {
		c := &classes[i]
		if c.Spec.Controller != controllerName {
			continue
		}
		ours[c.Name] = true
		if c.Annotations[annotationDefaultClass] == "true" {
			defaultIsOurs = true
		}
	}
	var served []*networkingv1.Ingress
	for i := range ingresses {
		ing := &ingresses[i]
		class := ""
		if ing.Spec.IngressClassName != nil {
			class = *ing.Spec.IngressClassName
		} else {
			class = ing.Annotations[annotationIngressClass]
		}
		if (class == "" && defaultIsOurs) || ours[class] {
			served = append(served, ing)
		}
	}
	sort.SliceStable(served, func(i, j int) bool { return olderIngress(served[i], served[j]) })
	return served
}

// olderIngress orders Ingresses by creationTimestamp, then namespace, then name.
func olderIngress(a, b *networkingv1.Ingress) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

package controllers

import (
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/component"
)

// liveObject is what the conflict check needs to know of an existing object with a rendered name.
type liveObject struct {
	Kind, Namespace, Name string
	Labels, Annotations   map[string]string
}

// foreignDNSObjects returns, for each rendered DNS object whose live counterpart Plexus did not
// create and nobody handed over, a sentence naming it and how to hand it over. An object is
// Plexus' when it carries the DNS component's labels (every render stamps them); it is handed over
// by the AdoptAnnotation. Overwriting is never silent: a kubeadm cluster's kube-dns stays until the
// user says so. It is pure.
func foreignDNSObjects(rendered []client.Object, live []liveObject) []string {
	byKey := map[string]liveObject{}
	for _, l := range live {
		byKey[l.Kind+"/"+l.Namespace+"/"+l.Name] = l
	}
	var out []string
	for _, o := range rendered {
		kind := o.GetObjectKind().GroupVersionKind().Kind
		l, ok := byKey[kind+"/"+o.GetNamespace()+"/"+o.GetName()]
		if !ok || ownedByPlexusDNS(l.Labels) || l.Annotations[v1.AdoptAnnotation] == "true" {
			continue
		}
		where, nsFlag := l.Name, ""
		if l.Namespace != "" {
			where, nsFlag = l.Namespace+"/"+l.Name, " -n "+l.Namespace
		}
		how := fmt.Sprintf("hand it over with `kubectl%s annotate %s %s %s=true`", nsFlag, strings.ToLower(kind), l.Name, v1.AdoptAnnotation)
		if kind == "Deployment" {
			// A Deployment's selector cannot change, and Plexus' selects its own pods only: it
			// cannot be taken over in place, only replaced.
			how = fmt.Sprintf("hand it over by deleting it, `kubectl%s delete deployment %s`, once the rest is handed over; Plexus then creates its own", nsFlag, l.Name)
		}
		out = append(out, fmt.Sprintf("%s %s exists and was not created by Plexus (%s)", kind, where, how))
	}
	return out
}

func ownedByPlexusDNS(labels map[string]string) bool {
	return component.Owns(component.DNS, labels)
}

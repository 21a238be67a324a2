// Package v1alpha1 contains the Plexus API: ClusterNetwork, the one resource a platform team edits,
// and NodeNetwork, the per-node allocation and status that the operator and the agents share.
//
// +kubebuilder:object:generate=true
// +groupName=plexus.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every Plexus API type.
	GroupVersion = schema.GroupVersion{Group: "plexus.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Plexus types with a runtime scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Plexus types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

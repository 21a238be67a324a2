package v1alpha1

// ConditionDNSAvailable is True when the cluster DNS Plexus runs answers: every wanted CoreDNS
// replica is ready with the served Corefile and the kube-dns Service holds the effective IP. It is
// True with reason DNSDisabled when spec.dns.enabled is false. It rolls into Ready.
const ConditionDNSAvailable = "DNSAvailable"

// ReasonDNSNotAvailable is the reason of Ready=False while DNSAvailable is False.
const ReasonDNSNotAvailable = "DNSNotAvailable"

// Reasons of ConditionDNSAvailable.
const (
	// ReasonDNSDisabled: spec.dns.enabled is false; Plexus runs no DNS and removed what it ran.
	ReasonDNSDisabled = "DNSDisabled"
	// ReasonDNSServing: every wanted replica is ready and the Service is at the effective IP.
	ReasonDNSServing = "Serving"
	// ReasonDNSRollingOut: replicas are starting or being replaced; DNS may still answer.
	ReasonDNSRollingOut = "RollingOut"
	// ReasonDNSUnavailable: no CoreDNS replica is ready.
	ReasonDNSUnavailable = "NoReadyReplicas"
	// ReasonDNSServiceIPMismatch: the kube-dns Service is not at the effective IP.
	ReasonDNSServiceIPMismatch = "ServiceIPMismatch"
	// ReasonDNSForeignObject: a kube-dns Service, CoreDNS Deployment or its ConfigMap exists that
	// Plexus did not create; Plexus leaves it alone until it is handed over (AdoptAnnotation).
	ReasonDNSForeignObject = "ForeignDNSObject"
)

// AdoptAnnotation, set to "true" on an object Plexus did not create (a kubeadm cluster's kube-dns
// Service, coredns Deployment or ConfigMap), hands it over: Plexus then overwrites it with its own.
const AdoptAnnotation = "plexus.dev/adopt"

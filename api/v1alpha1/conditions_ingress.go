package v1alpha1

// ConditionIngressAvailable is True when the ingress controller Plexus runs serves: every wanted
// plexus-ingress replica is ready (each has loaded a config) and its Service exists. It is True
// with reason IngressDisabled when spec.ingress.enabled is false. It rolls into Ready.
const ConditionIngressAvailable = "IngressAvailable"

// ReasonIngressNotAvailable is the reason of Ready=False while IngressAvailable is False.
const ReasonIngressNotAvailable = "IngressNotAvailable"

// Reasons of ConditionIngressAvailable.
const (
	// ReasonIngressDisabled: spec.ingress.enabled is false; Plexus runs no ingress controller and
	// removed what it ran.
	ReasonIngressDisabled = "IngressDisabled"
	// ReasonIngressServing: every wanted replica is ready and the Service exists.
	ReasonIngressServing = "Serving"
	// ReasonIngressRollingOut: replicas are starting or being replaced; ingress may still serve.
	ReasonIngressRollingOut = "RollingOut"
	// ReasonIngressUnavailable: no plexus-ingress replica is ready (or none is wanted).
	ReasonIngressUnavailable = "NoReadyReplicas"
	// ReasonIngressNoService: the controller's Service does not exist (yet).
	ReasonIngressNoService = "NoService"
)

// Package admit closes the window in which a freshly started pod could accept traffic before
// the NetworkPolicies that select it are in force.
//
// plexus-cni's ADD, once it has assigned the pod's addresses and before it builds the pod's
// interface, asks the agent over a unix socket (package wire) to enforce policy for the pod at
// those addresses, and fails unless the agent confirms. The agent's side is a Tracker: it keeps
// the addresses in a Pending overlay that the policy compile merges into the informer's pods
// (the kubelet writes status.podIPs only later), triggers a sync and answers once a sync that
// began after the request held the pod and was programmed. Server puts a Tracker on the socket.
//
// Wiring in the agent's policy plane:
//
//	tracker := admit.NewTracker(requestSync)      // requestSync must not block
//	ln, _ := admit.Listen(wire.DefaultSocketPath)
//	go (&admit.Server{Tracker: tracker}).Serve(ctx, ln)
//	// in every policy sync:
//	round := tracker.Begin(informerPods)
//	model := policy.Compile(policy.Input{Pods: round.Pods, ...})
//	err := program(model)
//	round.Done(err)
package admit

package cni

import (
	"crypto/sha256"
	"encoding/hex"
)

const (
	// HostVethPrefix starts the name of every host-side veth plexus-cni creates, so operators (and
	// the agent's policy rules) can match them with "plx+".
	HostVethPrefix = "plx"
	// hostVethHashChars is how many hex characters of the hash follow the prefix: 3+11 = 14, under
	// the kernel's 15-character limit (IFNAMSIZ 16 including the NUL). 44 bits make a collision
	// between the few hundred pods of one node vanishingly unlikely.
	hostVethHashChars = 11
)

// HostVethName returns the name of the node-side veth for one pod attachment. It is derived
// from the container ID and the interface name inside the pod, so DEL and GC find the link
// again without any saved state, and a pod with two interfaces (e.g. eth0 and net1) gets two.
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return HostVethPrefix + hex.EncodeToString(sum[:])[:hostVethHashChars]
}

// Package wire is the protocol between plexus-cni and the plexus agent for admitting a new pod
// under NetworkPolicy: before ADD returns, the plugin asks the agent to enforce the policies that
// select the pod at its new addresses, and waits for the answer.
//
// One exchange per connection on a unix stream socket: the plugin writes one Request as a line
// of JSON, the agent answers with one Response line and closes. The package uses only the
// standard library so the plugin binary stays small and free of Kubernetes client code.
package wire

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// DefaultSocketPath is where the agent listens unless configured otherwise. /run is a tmpfs, so a
// socket left by a crashed agent never outlives a reboot.
const DefaultSocketPath = "/run/plexus/policy.sock"

// DefaultClientTimeout is how long plexus-cni waits for the agent before ADD fails.
const DefaultClientTimeout = 25 * time.Second

// maxLine bounds a request or response line: a pod reference and two addresses need far less.
const maxLine = 64 << 10

// Request asks the agent to enforce NetworkPolicy for a pod at the given addresses.
type Request struct {
	// Namespace and Name identify the pod (CNI_ARGS K8S_POD_NAMESPACE, K8S_POD_NAME).
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// UID is the pod's UID when the runtime passes it (K8S_POD_UID): it tells a new pod from a
	// deleted one of the same name that the agent may still have cached.
	UID string `json:"uid,omitempty"`
	// ContainerID is the sandbox, for the agent's logs.
	ContainerID string `json:"containerID,omitempty"`
	// IPs are the addresses the plugin assigned to the pod.
	IPs []netip.Addr `json:"ips"`
	// WaitMillis is how long the plugin waits for the answer (0: unknown). The agent answers a
	// little earlier, so that its reason for refusing reaches the kubelet instead of a timeout.
	WaitMillis int64 `json:"waitMillis,omitempty"`
}

// Validate reports the first missing or malformed field.
func (r *Request) Validate() error {
	switch {
	case r.Namespace == "":
		return errors.New(`field "namespace": missing`)
	case r.Name == "":
		return errors.New(`field "name": missing`)
	case len(r.IPs) == 0:
		return errors.New(`field "ips": no address`)
	}
	for _, ip := range r.IPs {
		if !ip.IsValid() {
			return errors.New(`field "ips": empty address`)
		}
	}
	return nil
}

// Pod returns "namespace/name".
func (r *Request) Pod() string { return r.Namespace + "/" + r.Name }

// Response is the agent's answer.
type Response struct {
	// Enforced is true once a policy sync that started after the request, and that included the
	// pod at its addresses, has been programmed successfully.
	Enforced bool `json:"enforced"`
	// Error says why not, when Enforced is false.
	Error string `json:"error,omitempty"`
}

// Ask sends req to the agent listening at socketPath and waits for its answer until ctx ends. It
// returns nil only when the agent confirmed enforcement; every other outcome (no agent, a refusal,
// a timeout) is an error that says which.
func Ask(ctx context.Context, socketPath string, req Request) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return fmt.Errorf("connect to the plexus agent at %s: %w", socketPath, err)
	}
	defer conn.Close()
	// A deadline on the connection makes a silent agent end the wait when ctx does.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		if req.WaitMillis == 0 {
			req.WaitMillis = time.Until(dl).Milliseconds()
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := WriteLine(conn, req); err != nil {
		return fmt.Errorf("send request to the plexus agent: %w", err)
	}
	var resp Response
	if err := ReadLine(bufio.NewReader(conn), &resp); err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			// The connection's deadline is ctx's and may fire a moment before ctx reports it.
			cause := ctx.Err()
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			return fmt.Errorf("no answer from the plexus agent in time: %w", cause)
		}
		return fmt.Errorf("read the plexus agent's answer: %w", err)
	}
	if !resp.Enforced {
		if resp.Error == "" {
			resp.Error = "the agent gave no reason"
		}
		return fmt.Errorf("the plexus agent did not enforce: %s", resp.Error)
	}
	return nil
}

// WriteLine writes v as one line of JSON.
func WriteLine(conn net.Conn, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = conn.Write(append(data, '\n'))
	return err
}

// ReadLine reads one line of JSON into v; a line longer than 64 KiB is an error.
func ReadLine(r *bufio.Reader, v any) error {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return err
		}
		line = append(line, chunk...)
		if len(line) > maxLine {
			return fmt.Errorf("line longer than %d bytes", maxLine)
		}
		if !isPrefix {
			break
		}
	}
	return json.Unmarshal(line, v)
}

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// hostPortTCP and hostPortUDP are the node ports the spec's pod asks for: the echo server's HTTP
	// port and its UDP echo.
	hostPortTCP = 18080
	hostPortUDP = 19001
	echoUDPPort = 9001
)

var _ = Describe("A pod with host ports", func() {
	It("is reached at its node's address from the underlay and from another node, until it is deleted", func() {
		node, other := labCfg.NodeAt(1), labCfg.NodeAt(2)
		underlay := "/run/netns/" + labCfg.UnderlayNetns()
		fromOther := "/run/netns/" + other.Netns
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-hostport", Namespace: lab.WorkloadNamespace},
			Spec: corev1.PodSpec{
				NodeName:                      node.Name,
				TerminationGracePeriodSeconds: new(int64),
				Containers: []corev1.Container{{
					Name: "echo", Image: lab.EchoImage, ImagePullPolicy: corev1.PullNever,
					Args: []string{"-udp", fmt.Sprintf(":%d", echoUDPPort)},
					Env:  []corev1.EnvVar{{Name: "POD_NAME", Value: "e2e-hostport"}},
					Ports: []corev1.ContainerPort{
						{Name: "http", ContainerPort: 8080, HostPort: hostPortTCP, Protocol: corev1.ProtocolTCP},
						{Name: "udp", ContainerPort: echoUDPPort, HostPort: hostPortUDP, Protocol: corev1.ProtocolUDP},
					},
				}},
			},
		}
		Expect(k8s.Create(ctx, pod)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, pod))).To(Succeed()) })
		Eventually(func() corev1.PodPhase {
			var p corev1.Pod
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(pod), &p)
			return p.Status.Phase
		}, convergeBound, 200*time.Millisecond).Should(Equal(corev1.PodRunning))

		type source struct{ name, nsPath string }
		sources := []source{{"the underlay", underlay}, {other.Name, fromOther}}
		addrs := []string{node.IPv4.String(), node.IPv6.String()}
		for _, src := range sources {
			for _, a := range addrs {
				url := "http://" + net.JoinHostPort(a, strconv.Itoa(hostPortTCP)) + "/"
				Eventually(func() (string, error) { return httpFrom(src.nsPath, url) }, convergeBound, 200*time.Millisecond).
					Should(ContainSubstring("pod=e2e-hostport "), "TCP host port %s from %s", url, src.name)
				udp := net.JoinHostPort(a, strconv.Itoa(hostPortUDP))
				Eventually(func() (string, error) { return udpEchoFrom(src.nsPath, udp, "ping "+src.name) }, convergeBound, 200*time.Millisecond).
					Should(Equal("ping "+src.name), "UDP host port %s from %s", udp, src.name)
			}
		}

		t0 := time.Now()
		Expect(k8s.Delete(ctx, pod)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
		}, convergeBound, 200*time.Millisecond).Should(BeTrue(), "the pod is gone")
		for _, src := range sources {
			for _, a := range addrs {
				hp := net.JoinHostPort(a, strconv.Itoa(hostPortTCP))
				Eventually(func() error { return tcpDialFrom(src.nsPath, hp) }, convergeBound, 200*time.Millisecond).
					Should(MatchError(syscall.ECONNREFUSED), "%s from %s after the pod's deletion", hp, src.name)
			}
		}
		AddReportEntry("host ports", fmt.Sprintf("TCP and UDP host ports of a pod on %s answered on %v from the underlay and from %s; connection refused %s after the delete call",
			node.Name, addrs, other.Name, time.Since(t0).Round(100*time.Millisecond)))
	})
})

// tcpDialFrom opens (and closes) a TCP connection to addr from inside the namespace nsPath.
func tcpDialFrom(nsPath, addr string) error {
	c, err := dialFrom(nsPath, "tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

// udpEchoFrom sends msg to addr from inside nsPath and returns the first datagram back.
func udpEchoFrom(nsPath, addr, msg string) (string, error) {
	c, err := dialFrom(nsPath, "udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func dialFrom(nsPath, network, addr string) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := lab.DialInNetns(dctx, nsPath, network, addr)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("dial %s %s: timeout", network, addr)
	}
	return c, err
}

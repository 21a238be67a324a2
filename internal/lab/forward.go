package lab

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
)

// DialInNetns opens a connection (any network Dial takes) from inside the network namespace at nsPath (e.g.
// /run/netns/plexus-lab-underlay). The socket stays in that namespace after the thread returns.
func DialInNetns(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is never unlocked: if switching back failed it must not run other goroutines,
		// and a locked thread ends with its goroutine.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			ch <- result{err: fmt.Errorf("open %s: %w", nsPath, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- result{err: fmt.Errorf("enter %s: %w", nsPath, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// Forward serves listen (on the machine) by connecting each client to target inside the network
// namespace at nsPath. It is how the machine's kubectl reaches the lab API server, whose address
// exists only inside the lab. It returns only on a listen error.
func Forward(listen, nsPath, target string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		in, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer in.Close()
			out, err := DialInNetns(context.Background(), nsPath, "tcp", target)
			if err != nil {
				return
			}
			defer out.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(out, in); closeWrite(out); done <- struct{}{} }()
			go func() { _, _ = io.Copy(in, out); closeWrite(in); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		_ = t.CloseWrite()
	}
}

// ForwardCommand runs the forwarder from its command line (`-listen A -netns P -to T
// [-pod-routes KUBECONFIG [-lb-pool CIDR]]`, the arguments lab up passes after `lab forward`); listen defaults to
// defaultListen. With -pod-routes the same process also follows the NodeNetworks and keeps routes
// to every node's pod CIDRs in the namespace P (FollowPodRoutes), so the control plane there
// reaches pods; with -lb-pool it also hands out load-balancer addresses (FollowLoadBalancers).
func ForwardCommand(args []string, defaultListen string) error {
	fs := flag.NewFlagSet("forward", flag.ExitOnError)
	listen := fs.String("listen", defaultListen, "address to serve on the machine")
	nsPath := fs.String("netns", "", "network namespace path to dial from")
	to := fs.String("to", "", "address to dial inside the namespace")
	podRoutes := fs.String("pod-routes", "", "kubeconfig: also keep routes to the nodes' pod CIDRs in the namespace (empty: off)")
	lbPool := fs.String("lb-pool", "", "IPv4 CIDR: also give LoadBalancer Services addresses of it and route it to a node in the namespace (needs -pod-routes' kubeconfig; empty: off)")
	_ = fs.Parse(args)
	if *lbPool != "" {
		pool, err := netip.ParsePrefix(*lbPool)
		if err != nil || *podRoutes == "" {
			return fmt.Errorf("-lb-pool %q: want an IPv4 CIDR, and -pod-routes for the kubeconfig", *lbPool)
		}
		go func() {
			if err := FollowLoadBalancers(context.Background(), *podRoutes, *nsPath, pool); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}()
	}
	if *podRoutes != "" {
		go func() {
			if err := FollowPodRoutes(context.Background(), *podRoutes, *nsPath); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}()
	}
	return Forward(*listen, *nsPath, *to)
}

// ServeForwarderIfAsked makes a test binary serve as its lab's API forwarder: lab up starts its
// own executable as `<exe> lab forward ...`, and under go test that executable is the test
// binary. Called first in TestMain; it returns when the process was not started that way, and
// exits otherwise.
func ServeForwarderIfAsked(defaultListen string) {
	if len(os.Args) < 3 || os.Args[1] != "lab" || os.Args[2] != "forward" {
		return
	}
	if err := ForwardCommand(os.Args[3:], defaultListen); err != nil {
		fmt.Fprintln(os.Stderr, "forward:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

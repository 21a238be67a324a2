package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
)

// About is what the binary prints when run without CNI_COMMAND.
const About = "plexus-cni: routed veth pod interfaces with addresses from the node's Plexus pod CIDRs"

// SupportedVersions are the CNI spec versions plexus-cni speaks. GC and STATUS need 1.1.0; CHECK
// needs 0.4.0.
var SupportedVersions = version.PluginSupports("0.4.0", "1.0.0", "1.1.0")

// PluginFuncs returns the handlers for skel.PluginMainFuncs. Every error they return is a
// *types.Error with a CNI error code.
func PluginFuncs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus}
}

// cmdAdd allocates the pod's addresses, waits for the agent to enforce the pod's NetworkPolicies
// (when the node enforces them), builds its veth and programs its host ports. Calling it again for the same
// container and interface returns the same addresses.
func cmdAdd(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	st, mtu, err := nodeStateAndMTU(conf)
	if err != nil {
		return err
	}
	if err := validNetns(args.Netns); err != nil {
		return err
	}
	owner := Owner{ContainerID: args.ContainerID, IfName: args.IfName}

	store, err := OpenStore(conf.DataDir)
	if err != nil {
		return internalError("%v", err)
	}
	defer store.Close()
	var addrs []netip.Addr
	err = store.WithLock(func() (err error) {
		addrs, err = assignAddresses(store, st, owner)
		return err
	})
	if pe, ok := errors.AsType[*PoolExhaustedError](err); ok {
		return types.NewError(CodePoolExhausted, pe.Error(),
			"delete pods on this node, or give the node a larger pod CIDR")
	}
	if err != nil {
		return internalError("allocate addresses for %s: %v", owner, err)
	}

	// Policy before the interface: until the agent confirms, no route leads to the pod at all.
	if err := awaitPolicy(conf, st, args.Args, owner.ContainerID, addrs); err != nil {
		_ = store.WithLock(func() error { _, err := releaseOwner(store, owner); return err })
		return err
	}
	a := attachment{owner: owner, netnsPath: args.Netns, hostVeth: HostVethName(owner.ContainerID, owner.IfName), mtu: mtu, addrs: addrs}
	res, err := setUp(a)
	if err == nil && len(conf.PortMappings) > 0 {
		// Before ADD returns, so no container of the pod runs without its host ports.
		if err = addHostPorts(conf.DataDir, owner, conf.PortMappings, addrs); err != nil {
			_ = deleteHostVeth(a.hostVeth)
		}
	}
	if err != nil {
		// Give the addresses back: the runtime may never call DEL for a failed ADD.
		_ = store.WithLock(func() error { _, err := releaseOwner(store, owner); return err })
		return err
	}
	return types.PrintResult(buildResult(a, res), conf.Net.CNIVersion)
}

// cmdDel removes the pod's host ports and veth and frees its addresses. It succeeds for an unknown container,
// and without a network namespace (the pod's namespace may be gone already): the node side of
// the pair is found by its name and the addresses by their owner.
func cmdDel(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	owner := Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	// Host ports first: no DNAT may point at an address that is about to be freed.
	if err := removeHostPorts(conf.DataDir, owner); err != nil {
		return err
	}
	// Link first: an address is free only once no route on the node points at its old pod. The
	// deletion runs without the store lock: it waits for RCU grace periods (tens of ms) and would
	// otherwise serialise every ADD and DEL on the node behind it.
	if err := deleteHostVeth(HostVethName(owner.ContainerID, owner.IfName)); err != nil {
		return err
	}
	store, err := OpenStore(conf.DataDir)
	if err != nil {
		return internalError("%v", err)
	}
	defer store.Close()
	return store.WithLock(func() error {
		if _, err := releaseOwner(store, owner); err != nil {
			return internalError("free addresses of %s: %v", owner, err)
		}
		return nil
	})
}

// cmdCheck verifies that the attachment recorded in prevResult is intact, host ports included.
func cmdCheck(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if conf.Net.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs the ADD result in \"prevResult\"; the runtime did not pass one", "")
	}
	prev, err := types100.NewResultFromResult(conf.Net.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, fmt.Sprintf("cannot read prevResult: %v", err), "")
	}
	if err := validNetns(args.Netns); err != nil {
		return err
	}
	_, mtu, err := nodeStateAndMTU(conf)
	if err != nil {
		return err
	}
	owner := Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	recorded, err := recordedAddresses(conf.DataDir, owner)
	if err != nil {
		return err
	}
	var inResult []netip.Addr
	for _, c := range prev.IPs {
		ip, _ := netip.AddrFromSlice(c.Address.IP)
		inResult = append(inResult, ip.Unmap())
	}
	if !sameAddrs(recorded, inResult) {
		return checkFailed("addresses of %s: ADD returned %v but the allocation store holds %v", owner, inResult, recorded)
	}
	err = checkAttachment(attachment{
		owner: owner, netnsPath: args.Netns, hostVeth: HostVethName(owner.ContainerID, owner.IfName), mtu: mtu, addrs: recorded,
	})
	if err == nil && len(conf.PortMappings) > 0 {
		err = checkHostPorts(conf.DataDir, owner, conf.PortMappings, recorded)
	}
	return err
}

// cmdGC frees every allocation whose attachment is not in the runtime's list of valid ones
// (cni.dev/valid-attachments), deletes its host veth if it still exists and removes its host ports. Like DEL it deletes
// links without holding the store lock, and frees an owner's addresses only after its link is gone.
func cmdGC(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	valid := map[Owner]bool{}
	for _, a := range conf.Net.ValidAttachments {
		valid[Owner{ContainerID: a.ContainerID, IfName: a.IfName}] = true
	}
	store, err := OpenStore(conf.DataDir)
	if err != nil {
		return internalError("%v", err)
	}
	defer store.Close()
	var stale []Owner
	err = store.WithLock(func() error {
		allocs, err := store.List()
		stale = staleOwners(allocs, valid)
		return err
	})
	if err != nil {
		return internalError("garbage-collect allocations: %v", err)
	}
	var errs []error
	// Host ports first, as in DEL; their records are collected on their own (an attachment
	// may hold host ports whose addresses are already gone).
	if err := gcHostPorts(conf.DataDir, valid); err != nil {
		errs = append(errs, err)
	}
	var gone []Owner
	for _, o := range stale {
		if o.ContainerID != "" { // an unreadable record has no link to look for
			if err := deleteHostVeth(HostVethName(o.ContainerID, o.IfName)); err != nil {
				errs = append(errs, err) // keep its addresses; the next GC tries again
				continue
			}
		}
		gone = append(gone, o)
	}
	err = store.WithLock(func() error {
		for _, o := range gone {
			if _, err := releaseOwner(store, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return internalError("garbage-collect allocations: %v", errors.Join(errs...))
	}
	return nil
}

// cmdStatus reports whether the plugin can serve ADD: code 50 (plugin not available) until the
// agent has published at least one pod CIDR.
func cmdStatus(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if _, err := readReadyNodeState(conf.NodeStatePath); err != nil {
		var ce *types.Error
		if errors.As(err, &ce) {
			return types.NewError(types.ErrPluginNotAvailable, ce.Msg, ce.Details)
		}
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	return nil
}

// nodeStateAndMTU reads the node state the agent wrote (it must be ready) and the MTU pods get
// on this node, as ADD and CHECK both need them.
func nodeStateAndMTU(conf *Config) (*NodeState, int, error) {
	st, err := readReadyNodeState(conf.NodeStatePath)
	if err != nil {
		return nil, 0, err
	}
	mtu, err := effectiveMTU(conf, st)
	if err != nil {
		return nil, 0, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	return st, mtu, nil
}

// readReadyNodeState reads the node state and requires at least one pod CIDR.
func readReadyNodeState(path string) (*NodeState, error) {
	st, err := ReadNodeState(path)
	if errors.Is(err, ErrNodeStateMissing) {
		return nil, notReadyError(path, err)
	}
	if err != nil {
		return nil, badNodeStateError(err)
	}
	if len(st.PodCIDRs.List()) == 0 {
		return nil, notReadyError(path, nil)
	}
	return st, nil
}

// validNetns checks that path is a network namespace before anything is allocated for it.
func validNetns(path string) error {
	if path == "" {
		return netnsError(path, nil)
	}
	if err := ns.IsNSorErr(path); err != nil {
		return netnsError(path, err)
	}
	return nil
}

// recordedAddresses returns owner's addresses from the store at dir.
func recordedAddresses(dir string, owner Owner) ([]netip.Addr, error) {
	store, err := OpenStore(dir)
	if err != nil {
		return nil, internalError("%v", err)
	}
	defer store.Close()
	var out []netip.Addr
	err = store.WithLock(func() (err error) {
		out, err = ownedAddresses(store, owner)
		return err
	})
	if err != nil {
		return nil, internalError("read allocations of %s: %v", owner, err)
	}
	return out, nil
}

func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// buildResult is the ADD result: the host veth, the pod interface, one IP per family on the pod
// interface (index 1) with its gateway, and the default routes.
func buildResult(a attachment, res *attached) *types100.Result {
	r := &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{
			{Name: a.hostVeth, Mac: res.hostMAC.String()},
			{Name: a.owner.IfName, Mac: res.podMAC.String(), Mtu: a.mtu, Sandbox: a.netnsPath},
		},
	}
	for _, ip := range a.addrs {
		gw := net.IP(gatewayFor(ip).AsSlice())
		r.IPs = append(r.IPs, &types100.IPConfig{Interface: types100.Int(1), Address: *hostPrefix(ip), Gateway: gw})
		r.Routes = append(r.Routes, &types.Route{Dst: *defaultDst(ip), GW: gw})
	}
	return r
}

package nftables

import (
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ruleExprs encodes one rule of a policy or policy-set chain (the nft text
// ruleShapes and setChainRules write) as the expressions nft 1.0.6 itself
// generates for it, so that the kernel holds, and nft prints back, the
// same rule whichever way it was written (the kernel tests compare both).
// The grammar is exactly what those functions produce:
//
//	[ip|ip6 saddr|daddr @set]...
//	[meta l4proto . th dport @set]
//	[ip|ip6 daddr . meta l4proto . th dport @set]
//	[counter name <counter>] [accept|drop|jump <chain>|goto <chain>]
//
// interval tells whether a set has the interval flag (see the ports
// lookup below). Anything else is an error: the caller writes it with nft.
func ruleExprs(rule string, interval func(set string) bool) ([]expr.Any, error) {
	words := strings.Fields(rule)
	var out []expr.Any
	// nft checks the family once per rule for all the ip / ip6
	// expressions of that family.
	checked := ""
	i := 0
	next := func(n int) []string {
		if i+n > len(words) {
			return nil
		}
		w := words[i : i+n]
		i += n
		return w
	}
	for i < len(words) {
		switch w := words[i]; w {
		case "ip", "ip6":
			f := famV4
			if w == "ip6" {
				f = famV6
			}
			if checked != w {
				out = append(out, familyCheck(f)...)
				checked = w
			}
			field := next(2)
			if field == nil {
				return nil, fmt.Errorf("rule %q: truncated %s match", rule, w)
			}
			load, err := addressLoad(f, field[1])
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", rule, err)
			}
			if i < len(words) && words[i] == "." {
				// ip daddr . meta l4proto . th dport @named
				tail := next(7)
				if tail == nil || strings.Join(tail[:6], " ") != ". meta l4proto . th dport" || !strings.HasPrefix(tail[6], "@") {
					return nil, fmt.Errorf("rule %q: unsupported concatenation", rule)
				}
				out = append(out, load)
				out = append(out, portFields(addrLen(f))...)
				out = append(out, &expr.Lookup{SourceRegister: unix.NFT_REG_1, SetName: tail[6][1:]})
				continue
			}
			set := next(1)
			if set == nil || !strings.HasPrefix(set[0], "@") {
				return nil, fmt.Errorf("rule %q: %s %s without a set", rule, w, field[1])
			}
			out = append(out, load, &expr.Lookup{SourceRegister: unix.NFT_REG_1, SetName: set[0][1:]})
		case "meta":
			tail := next(6)
			if tail == nil || strings.Join(tail[:5], " ") != "meta l4proto . th dport" || !strings.HasPrefix(tail[5], "@") {
				return nil, fmt.Errorf("rule %q: unsupported meta match", rule)
			}
			name := tail[5][1:]
			out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG_1})
			if interval(name) {
				// nft 1.0.6 converts the 1-byte protocol to network
				// order (a no-op) before a lookup in an interval
				// concatenation; written the same, it prints the same.
				out = append(out, &expr.Byteorder{SourceRegister: unix.NFT_REG_1, DestRegister: unix.NFT_REG_1, Op: expr.ByteorderHton, Len: 1, Size: 2})
			}
			out = append(out,
				&expr.Payload{DestRegister: register(registerSize), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: unix.NFT_REG_1, SetName: name})
		case "counter":
			name := next(3)
			if name == nil || name[1] != "name" {
				return nil, fmt.Errorf("rule %q: only named counters are written through netlink", rule)
			}
			out = append(out, &expr.Objref{Type: int(unix.NFT_OBJECT_COUNTER), Name: name[2]})
		case "accept", "drop":
			i++
			kind := expr.VerdictAccept
			if w == "drop" {
				kind = expr.VerdictDrop
			}
			out = append(out, &expr.Verdict{Kind: kind})
		case "jump", "goto":
			chain := next(2)
			if chain == nil {
				return nil, fmt.Errorf("rule %q: %s without a chain", rule, w)
			}
			kind := expr.VerdictJump
			if w == "goto" {
				kind = expr.VerdictGoto
			}
			out = append(out, &expr.Verdict{Kind: kind, Chain: chain[1]})
		default:
			return nil, fmt.Errorf("rule %q: %q is not written through netlink", rule, w)
		}
	}
	return out, nil
}

// familyCheck is the dependency nft adds to an ip / ip6 match in an inet
// table: meta nfproto equals the family.
func familyCheck(f fam) []expr.Any {
	proto := byte(unix.NFPROTO_IPV4)
	if f.is6 {
		proto = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: unix.NFT_REG_1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: []byte{proto}},
	}
}

// addressLoad loads the source or destination address of the network
// header into register 1 (IPv4: bytes 12 and 16; IPv6: 8 and 24).
func addressLoad(f fam, field string) (*expr.Payload, error) {
	offsets := map[string]uint32{"saddr": 12, "daddr": 16}
	if f.is6 {
		offsets = map[string]uint32{"saddr": 8, "daddr": 24}
	}
	off, ok := offsets[field]
	if !ok {
		return nil, fmt.Errorf("unsupported field %s %s", f.ip, field)
	}
	return &expr.Payload{DestRegister: unix.NFT_REG_1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: addrLen(f)}, nil
}

func addrLen(f fam) uint32 {
	if f.is6 {
		return 16
	}
	return 4
}

// portFields loads meta l4proto and th dport into the registers after an
// address of addrBytes in a concatenation (each field starts on a 4-byte
// register boundary).
func portFields(addrBytes uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: register(addrBytes)},
		&expr.Payload{DestRegister: register(addrBytes + registerSize), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

// register names the register at byte offset off of a concatenation that
// starts in register 1: the 16-byte register when off is a multiple of 16
// (as nft names it), else the 4-byte one.
func register(off uint32) uint32 {
	if off%16 == 0 {
		return unix.NFT_REG_1 + off/16
	}
	return unix.NFT_REG32_00 + off/registerSize
}

package nftables

import (
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ruleExprs encodes one rule of a policy-set chain (the nft text
// setChainRules writes) as the expressions nft 1.0.6 itself
// generates for it, so that the kernel holds, and nft prints back, the
// same rule whichever way it was written (the kernel tests compare both).
// The grammar is exactly what those functions produce:
//
//	[ip|ip6 saddr|daddr @set]
//	[ip|ip6 saddr|daddr . meta l4proto [. th dport] @set]
//	[counter name <counter>] [accept|drop|jump <chain>|goto <chain>]
//
// interval tells whether a set has the interval flag (see protoField). Anything else is an error: the caller writes it with nft.
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
				// ip saddr . meta l4proto [. th dport] @set
				tail := next(4)
				if tail == nil || strings.Join(tail[:3], " ") != ". meta l4proto" {
					return nil, fmt.Errorf("rule %q: unsupported concatenation", rule)
				}
				withPort := tail[3] == "."
				if withPort {
					more := next(3)
					if more == nil || strings.Join(more[:2], " ") != "th dport" {
						return nil, fmt.Errorf("rule %q: unsupported concatenation", rule)
					}
					tail = append(tail[:3], more[2])
				}
				if !strings.HasPrefix(tail[3], "@") {
					return nil, fmt.Errorf("rule %q: concatenation without a set", rule)
				}
				name := tail[3][1:]
				out = append(out, load)
				out = append(out, protoField(addrLen(f), interval(name))...)
				if withPort {
					out = append(out, portField(addrLen(f)+registerSize))
				}
				out = append(out, &expr.Lookup{SourceRegister: unix.NFT_REG_1, SetName: name})
				continue
			}
			set := next(1)
			if set == nil || !strings.HasPrefix(set[0], "@") {
				return nil, fmt.Errorf("rule %q: %s %s without a set", rule, w, field[1])
			}
			out = append(out, load, &expr.Lookup{SourceRegister: unix.NFT_REG_1, SetName: set[0][1:]})
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

// protoField loads meta l4proto into the register at byte off of a
// concatenation. Before a lookup in an interval concatenation nft 1.0.6
// converts the 1-byte protocol to network order (a no-op); written the
// same, the rule prints the same.
func protoField(off uint32, interval bool) []expr.Any {
	out := []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: register(off)}}
	if interval {
		out = append(out, &expr.Byteorder{SourceRegister: register(off), DestRegister: register(off), Op: expr.ByteorderHton, Len: 1, Size: 2})
	}
	return out
}

// portField loads th dport into the register at byte off.
func portField(off uint32) expr.Any {
	return &expr.Payload{DestRegister: register(off), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
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

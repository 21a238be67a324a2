package nftables

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// The kernel stores set keys and map values as the bytes the rules load
// into registers, so an element written through netlink must be laid out
// exactly as the rule that looks it up builds its key:
//
//   - each field of a concatenation starts on a 4-byte boundary (a
//     register is 32 bits) and is zero-padded to it;
//   - addresses and ports are in network byte order (packet bytes);
//   - meta l4proto is one byte;
//   - numgen writes a 32-bit number in host byte order.
//
// encodeElement turns the text form the Proxier keeps (nft syntax, fields
// joined by " . ") into that layout. The kernel tests prove the two agree:
// a table written element by element through netlink lists the same as one
// written by nft.

// regSize is the size of an nftables register: the alignment of every
// concatenated field.
const regSize = 4

// protocolNumbers are the L4 protocols by the names nft prints.
var protocolNumbers = map[string]byte{"tcp": 6, "udp": 17, "sctp": 132}

// encodeElement returns e as a netlink set element of set e.set. withValue
// says whether to include the value (adds) or only the key (deletes).
func encodeElement(e element, withValue bool) (gnft.SetElement, error) {
	key, err := encodeKey(e.set, e.key)
	if err != nil {
		return gnft.SetElement{}, err
	}
	out := gnft.SetElement{Key: key}
	if !withValue || isSet(e.set) {
		return out, nil
	}
	if v, ok, err := encodeVerdict(e.value); ok || err != nil {
		out.VerdictData = v
		return out, err
	}
	out.Val, err = encodeFields(e.value, false)
	if err != nil {
		return gnft.SetElement{}, fmt.Errorf("value %q of %s: %w", e.value, e.set, err)
	}
	return out, nil
}

// encodeKey encodes a key of set. In an endpoints map the last field is
// the numgen slot; every other number is a port.
func encodeKey(set, key string) ([]byte, error) {
	b, err := encodeFields(key, strings.HasPrefix(set, mapEndpoints+"-"))
	if err != nil {
		return nil, fmt.Errorf("key %q of %s: %w", key, set, err)
	}
	return b, nil
}

// encodeFields encodes a concatenation of addresses, protocol names and
// numbers; lastIsSlot makes the last field a host-order numgen value.
func encodeFields(text string, lastIsSlot bool) ([]byte, error) {
	fields := strings.Split(text, " . ")
	out := make([]byte, 0, 16*len(fields))
	for i, f := range fields {
		var field []byte
		switch {
		case lastIsSlot && i == len(fields)-1:
			n, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("slot %q: %w", f, err)
			}
			field = binary.NativeEndian.AppendUint32(nil, uint32(n))
		case protocolNumbers[f] != 0:
			field = []byte{protocolNumbers[f]}
		case strings.ContainsAny(f, ".:"):
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			field = a.AsSlice()
		default:
			n, err := strconv.ParseUint(f, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("field %q is no address, protocol or port", f)
			}
			field = binary.BigEndian.AppendUint16(nil, uint16(n))
		}
		out = append(out, field...)
		if len(fields) > 1 {
			for len(out)%regSize != 0 {
				out = append(out, 0)
			}
		}
	}
	return out, nil
}

// encodeVerdict reads a verdict map value ("goto c", "jump c", "drop");
// ok is false when value is not a verdict.
func encodeVerdict(value string) (v *expr.Verdict, ok bool, err error) {
	verb, chain, _ := strings.Cut(value, " ")
	switch verb {
	case "goto":
		v = &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}
	case "jump":
		v = &expr.Verdict{Kind: expr.VerdictJump, Chain: chain}
	case "drop":
		v = &expr.Verdict{Kind: expr.VerdictDrop}
	case "accept":
		v = &expr.Verdict{Kind: expr.VerdictAccept}
	default:
		return nil, false, nil
	}
	if (verb == "goto" || verb == "jump") && chain == "" {
		return nil, true, fmt.Errorf("verdict %q names no chain", value)
	}
	return v, true, nil
}

package store

import (
	"strconv"
	"sync"
)

// A receipt names an SMSC id in one of its forms (see package dlr): as the
// submit_sm_resp gave it, or converted from hex to decimal or back, for
// carriers that write the two differently. Where forms of one receipt
// name different parts, the form decides: with sequential ids, receipt
// "10" is message "10" for a carrier that writes both in decimal, but
// message "16" for one that answers in decimal and reports in hex. Taking
// the newest message whatever the form, a decimal carrier's receipt for
// "10" settled message "16" once that one existed.
const (
	formSame   = iota // the receipt writes the id as submit_sm_resp did
	formHexDec        // the receipt in hex, submit_sm_resp in decimal
	formDecHex        // the receipt in decimal, submit_sm_resp in hex
	formKinds
)

// idForms learns, per SMSC, which form its receipts use: from the receipts
// whose forms name parts of one kind only. A receipt whose forms name
// parts of several kinds goes by the kind seen most (the id as given while
// none is known). An SMSC whose form the operator set (SetReceiptIDs)
// matches in that form only.
type idForms struct {
	mu    sync.Mutex
	seen  map[string]*[formKinds]int
	fixed map[string]int
}

// Receipt id forms an operator can set for an SMSC (smpp.receipt_ids).
const (
	ReceiptIDsAuto   = "auto"    // learnt (the default)
	ReceiptIDsSame   = "same"    // receipts write the id as submit_sm_resp did
	ReceiptIDsHexDec = "hex"     // receipts in hex, submit_sm_resp in decimal
	ReceiptIDsDecHex = "decimal" // receipts in decimal, submit_sm_resp in hex
)

// SetReceiptIDs sets how the receipts of SMSC smsc (its name; "" for an
// unnamed one) write the ids its submit_sm_resp gave: one of the
// ReceiptIDs constants. An unknown value is ReceiptIDsAuto.
func (s *Store) SetReceiptIDs(smsc, form string) {
	k := &s.idForms
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fixed == nil {
		k.fixed = make(map[string]int)
	}
	switch form {
	case ReceiptIDsSame:
		k.fixed[smsc] = formSame
	case ReceiptIDsHexDec:
		k.fixed[smsc] = formHexDec
	case ReceiptIDsDecHex:
		k.fixed[smsc] = formDecHex
	default:
		delete(k.fixed, smsc)
	}
}

// formKind tells how the form f of a receipt id relates to the id as the
// receipt gave it (canonical; both unscoped).
func formKind(canonical, f string) int {
	if f == canonical {
		return formSame
	}
	if v, err := strconv.ParseUint(canonical, 16, 64); err == nil && strconv.FormatUint(v, 10) == f {
		return formHexDec
	}
	return formDecHex
}

// match returns the part receipt op is for, among the parts recorded under
// each SMSC id form (byForm), or nil.
func (k *idForms) match(op *receiptOp, byForm map[string][]*partRec) *partRec {
	var best [formKinds]*partRec
	for i, f := range op.forms {
		kind := formSame
		if i > 0 && len(op.raw) == len(op.forms) {
			kind = formKind(op.raw[0], op.raw[i])
		}
		for _, p := range byForm[f] {
			if receiptFor(p, best[kind]) {
				best[kind] = p
			}
		}
	}
	kinds := 0 // of forms that name a part
	for _, p := range best {
		if p != nil {
			kinds++
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if kind, ok := k.fixed[op.smsc]; ok && len(op.raw) == len(op.forms) {
		if len(op.forms) == 1 {
			return best[formSame] // an id that reads the same in hex and decimal
		}
		return best[kind]
	}
	if k.seen == nil {
		k.seen = make(map[string]*[formKinds]int)
	}
	seen := k.seen[op.smsc]
	if seen == nil {
		seen = new([formKinds]int)
		k.seen[op.smsc] = seen
	}
	choice := -1
	for kind, p := range best {
		switch {
		case p == nil:
		case kinds == 1:
			// Unambiguous: learnt from, when the id had other forms.
			if len(op.forms) > 1 {
				seen[kind]++
			}
			return p
		case choice < 0 || seen[kind] > seen[choice]:
			choice = kind
		}
	}
	if choice < 0 {
		return nil
	}
	return best[choice]
}

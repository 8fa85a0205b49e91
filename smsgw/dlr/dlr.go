package dlr

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// TLV tags read by [Parse].
const (
	TagReceiptedMessageID uint16 = 0x001E // C-octet string
	TagNetworkErrorCode   uint16 = 0x0423 // network type (1 octet) + error code (2 octets)
	TagMessageState       uint16 = 0x0427 // 1 octet, see [StateFromTLV]
	TagMessagePayload     uint16 = 0x0424 // receipt text in a data_sm, used when short_message is empty
)

// ErrMalformed is returned (wrapped) for a PDU or text that claims to be a
// receipt but lacks the message id or the state.
var ErrMalformed = errors.New("dlr: malformed receipt")

// State is the final or intermediate state of a submitted message, spelled as
// in the stat: field of the text form. Values other than the constants below
// are kept as the carrier sent them, in upper case.
type State string

// The message states of SMPP 3.4 section 5.2.28, in their text-form spelling.
const (
	Enroute       State = "ENROUTE"
	Delivered     State = "DELIVRD"
	Expired       State = "EXPIRED"
	Deleted       State = "DELETED"
	Undeliverable State = "UNDELIV"
	Accepted      State = "ACCEPTD"
	Unknown       State = "UNKNOWN"
	Rejected      State = "REJECTD"
	Skipped       State = "SKIPPED" // SMPP 5.0 value 9; rare
)

// States some SMSCs write in the stat: field that SMPP 3.4 does not name:
// the message is held in the network, on its way (Kannel reads them so, as
// it reads ENROUTE and ACCEPTD: "buffered").
const (
	Buffred State = "BUFFRED"
	Bufferd State = "BUFFERD"
	Acked   State = "ACKED"
)

// Reason says in plain words, to the sender of a message the carrier
// failed in state s, what happened to it.
func (s State) Reason() string {
	switch s {
	case Undeliverable:
		return "the phone could not be reached"
	case Expired:
		return "the phone was not reachable before the message expired"
	case Rejected:
		return "the carrier refused it"
	case Deleted:
		return "the carrier deleted it"
	case Skipped:
		return "the carrier skipped it"
	}
	return "the carrier reported it failed"
}

// Final reports whether no further receipt is expected for the message.
// ENROUTE and ACCEPTD, and BUFFRED, BUFFERD and ACKED, are in progress;
// every other non-empty state is final, including ones this package does
// not recognise (Known), which also settle the message as failed (see
// Settles), as Kannel reads every stat: but DELIVRD and those in progress:
// the carrier reported an end, and not delivery. The gateway logs them.
//
// SMPP 3.4 describes ACCEPTED as read on the subscriber's behalf by
// customer service, an end; but SMSCs send ACCEPTD for "accepted by the
// next network", with the outcome to follow.
func (s State) Final() bool {
	switch s {
	case "", Enroute, Accepted, Buffred, Bufferd, Acked:
		return false
	}
	return true
}

// Settles reports whether a receipt in state s decides the outcome of the
// message: a final state other than UNKNOWN. UNKNOWN is final in SMPP 3.4
// (the message is "in invalid state"), but it says neither that the
// message reached the handset nor that it did not: SMSCs send it when the
// next network gave no report, and some send the real outcome after it. So
// it decides nothing: the message waits for another receipt, and without
// one ends as sent, its delivery not confirmed, like a message whose
// receipt never came. Message_state values outside 1..9, read as UNKNOWN,
// decide nothing either.
func (s State) Settles() bool { return s.Final() && s != Unknown }

// Known reports whether s is a state this package recognises: SMPP 3.4's,
// SKIPPED, and BUFFRED, BUFFERD and ACKED (the text form's spellings, and
// the synonyms parseState reads as them).
func (s State) Known() bool {
	switch s {
	case Enroute, Delivered, Expired, Deleted, Undeliverable, Accepted, Unknown, Rejected, Skipped, Buffred, Bufferd, Acked:
		return true
	}
	return false
}

// Success reports whether the message reached the handset (DELIVRD only).
func (s State) Success() bool { return s == Delivered }

// StateFromTLV maps message_state TLV values (1 ENROUTE .. 8 REJECTED, 9 SKIPPED) to State.
// Values outside 1..9 map to Unknown.
func StateFromTLV(v byte) State {
	switch v {
	case 1:
		return Enroute
	case 2:
		return Delivered
	case 3:
		return Expired
	case 4:
		return Deleted
	case 5:
		return Undeliverable
	case 6:
		return Accepted
	case 8:
		return Rejected
	case 9:
		return Skipped
	}
	return Unknown
}

// Receipt is a parsed delivery receipt.
type Receipt struct {
	ID                   string    // the SMSC message id as the receipt gives it (trimmed)
	State                State     // stat: field or message_state TLV
	Err                  string    // err: field or network_error_code rendered, "" if none
	Submitted, Done      int       // sub:, dlvrd: (0 if missing)
	SubmitDate, DoneDate time.Time // UTC; zero if missing/unparseable; formats YYMMDDhhmm (10 digits) and YYMMDDhhmmss (12)
	Text                 string    // text:/Text: field (may be empty)
}

// IsReceipt reports whether esm_class marks an SMSC delivery receipt (bits 2-5: 0x04 SMSC delivery receipt; also 0x08 SME ack, 0x10 manual ack, 0x20 intermediate notification count as receipts).
// 0x18 (conversation abort) and the other combinations do not.
func IsReceipt(esmClass byte) bool {
	switch esmClass & 0x3C {
	case 0x04, 0x08, 0x10, 0x20:
		return true
	}
	return false
}

// IsIntermediate reports whether esm_class marks an intermediate delivery
// notification (SMPP 3.4 §5.2.12, 0x20): a report on a message still in
// the SMSC's hands, say a delivery attempt that failed and will be tried
// again. Whatever its stat, it never decides the message's outcome.
func IsIntermediate(esmClass byte) bool { return esmClass&0x3C == 0x20 }

// Parse extracts a receipt from a deliver_sm/data_sm. tlvs maps tag → raw value. The TLVs win over the text when both are present
// (receipted_message_id is a C-octet string, may have trailing NUL; message_state 1 byte). If there are no TLVs, the text form is parsed.
// ok=false means this PDU is not a receipt (esm_class says no and no receipt TLVs); err non-nil means it claims to be a receipt but cannot be parsed.
//
// When shortMessage is empty the text is taken from the message_payload TLV
// (data_sm has no short_message). Fields the TLVs do not carry (dates,
// counts, text) come from the text when it has them. A network_error_code
// is rendered as its error code in at least three decimal digits, as in the
// text form's err: field. With err non-nil, r holds what could be read.
func Parse(esmClass byte, shortMessage []byte, tlvs map[uint16][]byte) (r Receipt, ok bool, err error) {
	idTLV, hasID := tlvs[TagReceiptedMessageID]
	stTLV, hasState := tlvs[TagMessageState]
	if !IsReceipt(esmClass) && !hasID && !hasState {
		return Receipt{}, false, nil
	}
	text := shortMessage
	if len(trimSpace(text)) == 0 {
		text = tlvs[TagMessagePayload]
	}
	if len(text) > 0 {
		r = scanText(string(text))
	}
	if id := trimSpace(idTLV); len(id) > 0 {
		r.ID = string(id)
	}
	if len(stTLV) > 0 && stTLV[0] >= 1 && stTLV[0] <= 9 {
		r.State = StateFromTLV(stTLV[0])
	} else if hasState && r.State == "" {
		r.State = Unknown
	}
	if e, ok := networkError(tlvs[TagNetworkErrorCode]); ok {
		r.Err = e
	}
	return r, true, r.check()
}

// networkError renders a network_error_code TLV (network type, 2-octet code).
func networkError(b []byte) (string, bool) {
	var code int
	switch len(b) {
	case 3:
		code = int(b[1])<<8 | int(b[2])
	case 2:
		code = int(b[0])<<8 | int(b[1])
	case 1:
		code = int(b[0])
	default:
		return "", false
	}
	if code < 10 {
		return "00" + strconv.Itoa(code), true
	}
	if code < 100 {
		return "0" + strconv.Itoa(code), true
	}
	return strconv.Itoa(code), true
}

func (r *Receipt) check() error {
	switch {
	case r.ID == "" && r.State == "":
		return fmt.Errorf("%w: no message id and no state", ErrMalformed)
	case r.ID == "":
		return fmt.Errorf("%w: no message id", ErrMalformed)
	case r.State == "":
		return fmt.Errorf("%w: no state", ErrMalformed)
	}
	return nil
}

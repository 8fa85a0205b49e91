package smsc

import (
	"fmt"
	"time"
)

// stat is the Appendix B stat: value for an outcome.
func stat(o Outcome) string {
	switch o {
	case OutcomeFailed:
		return "UNDELIV"
	case OutcomeRejected:
		return "REJECTD"
	case OutcomeExpired:
		return "EXPIRED"
	}
	return "DELIVRD"
}

func messageState(o Outcome) byte {
	switch o {
	case OutcomeFailed:
		return stateUndeliverable
	case OutcomeRejected:
		return stateRejected
	case OutcomeExpired:
		return stateExpired
	}
	return stateDelivered
}

// errCode is the receipt's err: value and the GSM network_error_code.
func errCode(o Outcome) uint16 {
	switch o {
	case OutcomeFailed:
		return 1
	case OutcomeRejected:
		return 2
	case OutcomeExpired:
		return 3
	}
	return 0
}

const receiptDate = "0601021504" // YYMMDDhhmm

// FormatReceipt renders an SMPP 3.4 Appendix B delivery receipt.
func FormatReceipt(id string, o Outcome, submitted, done time.Time, text string) string {
	dlvrd := "000"
	if o == OutcomeDelivered || o == OutcomeNone {
		dlvrd = "001"
	}
	return fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%03d text:%s",
		id, dlvrd, submitted.Format(receiptDate), done.Format(receiptDate), stat(o), errCode(o),
		asciiReceiptText(text, 20))
}

// receiptFrame builds the receipt PDU for m in the configured mode; the
// phone is the source, the submitter's source the destination.
func receiptFrame(st *settings, m *Message, id string, done time.Time) []byte {
	o := DeliverOpts{
		SourceTON: m.DestTON, SourceNPI: m.DestNPI, Source: m.Dest,
		DestTON: m.SourceTON, DestNPI: m.SourceNPI, Dest: m.Source,
		ESMClass: esmReceipt,
	}
	if st.ReceiptMode != ReceiptText {
		o.TLVs = append(o.TLVs,
			TLV{TagReceiptedMessageID, append([]byte(id), 0)},
			TLV{TagMessageState, []byte{messageState(m.Outcome)}})
		if code := errCode(m.Outcome); code != 0 {
			o.TLVs = append(o.TLVs, TLV{TagNetworkErrorCode, []byte{3, byte(code >> 8), byte(code)}}) // 3: GSM
		}
	}
	if st.ReceiptMode == ReceiptDataSM {
		o.UseDataSM = true
	} else {
		o.ShortMessage = []byte(FormatReceipt(id, m.Outcome, m.Received, done, m.Text))
	}
	b, _ := o.encode() // the receipt text is < 254 octets
	return b
}

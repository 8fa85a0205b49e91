package smpp

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadPDU feeds arbitrary bytes to the PDU reader and the inbound body
// decoders: they must never panic, never allocate past the 64 KiB bound,
// and return bodies of exactly command_length-16 bytes.
func FuzzReadPDU(f *testing.F) {
	f.Add(raw(cmdEnquireLink, 0, 1))
	f.Add(raw(cmdDeliverSM, 0, 2, deliverBody("12015550123", "12015550100", 0x40, 0, []byte{5, 0, 3, 1, 2, 1, 'h', 'i'}, tlv(0x0424, []byte("payload")))))
	f.Add(raw(cmdDataSM, 0, 3, []byte{0, 1, 1}, cstr("1"), []byte{1, 1}, cstr("2"), []byte{4, 0, 0}, tlv(0x001E, cstr("abc"))))
	f.Add(raw(cmdSubmitSM|respBit, 0, 4, cstr("abc123")))
	f.Add([]byte{0, 0, 0, 8, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			h, body, err := readPDU(r)
			if err != nil {
				var le *lengthError
				if errors.As(err, &le) && h.Len >= headerLen && h.Len <= maxPDULen {
					t.Fatalf("lengthError for valid length %d", h.Len)
				}
				return
			}
			if len(body) != int(h.Len)-headerLen {
				t.Fatalf("body %d bytes, command_length %d", len(body), h.Len)
			}
			var d *Deliver
			switch h.ID {
			case cmdDeliverSM:
				d, err = decodeDeliverSM(h, body)
			case cmdDataSM:
				d, err = decodeDataSM(h, body)
			case cmdSubmitSM | respBit:
				decodeMessageID(body)
			}
			if err == nil && d != nil && len(d.ShortMessage) > len(body) {
				t.Fatalf("ShortMessage longer than the body")
			}
		}
	})
}

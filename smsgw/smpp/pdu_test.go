package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// submitSMByGoSMPP is how encodeSubmitSM encoded a submit_sm before it
// wrote the bytes itself: through go-smpp's field map. It is the reference
// TestSubmitSMAsGoSMPP holds the new encoding to.
func submitSMByGoSMPP(seq uint32, s *Submit) ([]byte, error) {
	p := pdu.NewSubmitSM(nil)
	p.Header().Seq = seq
	f := p.Fields()
	f.Set(pdufield.ServiceType, "")
	f.Set(pdufield.SourceAddrTON, s.Source.TON)
	f.Set(pdufield.SourceAddrNPI, s.Source.NPI)
	f.Set(pdufield.SourceAddr, s.Source.Addr)
	f.Set(pdufield.DestAddrTON, s.Dest.TON)
	f.Set(pdufield.DestAddrNPI, s.Dest.NPI)
	f.Set(pdufield.DestinationAddr, s.Dest.Addr)
	f.Set(pdufield.ESMClass, s.ESMClass)
	f.Set(pdufield.ProtocolID, s.ProtocolID)
	f.Set(pdufield.PriorityFlag, s.PriorityFlag)
	f.Set(pdufield.ScheduleDeliveryTime, "")
	f.Set(pdufield.ValidityPeriod, s.ValidityPeriod)
	f.Set(pdufield.RegisteredDelivery, s.RegisteredDelivery)
	f.Set(pdufield.ReplaceIfPresentFlag, uint8(0))
	f.Set(pdufield.DataCoding, s.DataCoding)
	f.Set(pdufield.SMDefaultMsgID, uint8(0))
	f.Set(pdufield.ShortMessage, s.ShortMessage)
	return serialize(p, s.TLVs)
}

// TestSubmitSMAsGoSMPP: the submit_sm written by hand is, byte for byte,
// the one go-smpp writes, for fixed cases and a thousand random ones
// (every field, empty and longest strings, UDH and TLVs).
func TestSubmitSMAsGoSMPP(t *testing.T) {
	cases := []*Submit{
		hello,
		{},
		{Source: Address{TON: 5, NPI: 0, Addr: "MyBank"}, Dest: Address{TON: 1, NPI: 1, Addr: "447700900123"},
			ESMClass: 0x40, DataCoding: 8, RegisteredDelivery: 1, ProtocolID: 0x41, PriorityFlag: 3,
			ValidityPeriod: "000001000000000R", ShortMessage: bytes.Repeat([]byte{0xFF}, maxShortMessage),
			TLVs: map[uint16][]byte{0x0424: []byte("payload"), 0x020C: {0, 1}, 0x0001: nil}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	str := func(max int) string {
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			b[i] = byte(1 + r.IntN(255)) // any byte but NUL
		}
		return string(b)
	}
	for range 1000 {
		s := &Submit{
			Source:   Address{TON: byte(r.UintN(256)), NPI: byte(r.UintN(256)), Addr: str(20)},
			Dest:     Address{TON: byte(r.UintN(256)), NPI: byte(r.UintN(256)), Addr: str(20)},
			ESMClass: byte(r.UintN(256)), DataCoding: byte(r.UintN(256)), RegisteredDelivery: byte(r.UintN(256)),
			ProtocolID: byte(r.UintN(256)), PriorityFlag: byte(r.UintN(256)), ValidityPeriod: str(16),
			ShortMessage: []byte(str(maxShortMessage)),
		}
		if r.IntN(3) == 0 {
			s.TLVs = make(map[uint16][]byte)
			for range r.IntN(4) {
				s.TLVs[uint16(r.UintN(1<<16))] = []byte(str(300))
			}
		}
		cases = append(cases, s)
	}
	for i, s := range cases {
		seq := uint32(i + 1)
		got, err := encodeSubmitSM(seq, s)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		want, err := submitSMByGoSMPP(seq, s)
		if err != nil {
			t.Fatalf("case %d, go-smpp: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d (%+v):\n got %x\nwant %x", i, s, got, want)
		}
	}
}

// BenchmarkEncodeSubmitSM: a submit_sm of 160 GSM characters, written by
// hand and through go-smpp's field map (as it was).
func BenchmarkEncodeSubmitSM(b *testing.B) {
	s := &Submit{Source: Address{TON: 1, NPI: 1, Addr: "12015550100"}, Dest: Address{TON: 1, NPI: 1, Addr: "447700900123"},
		RegisteredDelivery: 1, ValidityPeriod: "000001000000000R", ShortMessage: bytes.Repeat([]byte{'x'}, 140)}
	for _, enc := range []struct {
		name string
		f    func(uint32, *Submit) ([]byte, error)
	}{{"by-hand", encodeSubmitSM}, {"go-smpp", submitSMByGoSMPP}} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				if _, err := enc.f(uint32(i), s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// deliverSMByGoSMPP is how decodeDeliverSM decoded a deliver_sm before it
// read the fields in place: through go-smpp's field map, with the plain
// layout. It is the reference TestDeliverSMAsGoSMPP holds the new decoding
// to.
func deliverSMByGoSMPP(h header, body []byte) (*Deliver, error) {
	list := pdufield.List{
		pdufield.ServiceType, pdufield.SourceAddrTON, pdufield.SourceAddrNPI, pdufield.SourceAddr,
		pdufield.DestAddrTON, pdufield.DestAddrNPI, pdufield.DestinationAddr, pdufield.ESMClass,
		pdufield.ProtocolID, pdufield.PriorityFlag, pdufield.ScheduleDeliveryTime, pdufield.ValidityPeriod,
		pdufield.RegisteredDelivery, pdufield.ReplaceIfPresentFlag, pdufield.DataCoding, pdufield.SMDefaultMsgID,
		pdufield.SMLength, pdufield.ShortMessage,
	}
	r := bytes.NewBuffer(body)
	f, err := list.Decode(r)
	if err != nil {
		return nil, err
	}
	for _, k := range list {
		if _, ok := f[k]; !ok {
			return nil, fmt.Errorf("truncated body: %s missing", k)
		}
	}
	// go-smpp's TLV decoder, not decodeTLVs, which decodeFields now uses.
	t, err := pdutlv.DecodeTLV(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", StatusInvOptParStream, err)
	}
	var tlvs map[uint16][]byte
	if len(t) > 0 {
		tlvs = make(map[uint16][]byte, len(t))
		for tag, v := range t {
			tlvs[uint16(tag)] = v.Bytes()
		}
	}
	d := &Deliver{
		Command:    cmdDeliverSM,
		Seq:        h.Seq,
		Source:     Address{TON: fixed(f, pdufield.SourceAddrTON), NPI: fixed(f, pdufield.SourceAddrNPI), Addr: cstring(f, pdufield.SourceAddr)},
		Dest:       Address{TON: fixed(f, pdufield.DestAddrTON), NPI: fixed(f, pdufield.DestAddrNPI), Addr: cstring(f, pdufield.DestinationAddr)},
		ESMClass:   fixed(f, pdufield.ESMClass),
		DataCoding: fixed(f, pdufield.DataCoding),
		TLVs:       tlvs,
	}
	sm, p := f[pdufield.ShortMessage].Bytes(), tlvs[tagMessagePayload]
	switch {
	case len(sm) == 0, len(p) > 0:
		// The one rule on top of go-smpp's reading: a payload is the
		// message (SMPP 3.4 5.3.2.32), even beside a short_message.
		d.ShortMessage = p
	default:
		d.ShortMessage = sm
	}
	return d, nil
}

// TestDeliverSMAsGoSMPP: deliver_sm bodies decode as go-smpp decoded them,
// or fail where it failed, with the same kind of error (a bad TLV stream
// or not): valid bodies with random fields and TLVs, each cut at every
// length, with bytes changed at random, and random bytes.
func TestDeliverSMAsGoSMPP(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	str := func(max int) []byte {
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			b[i] = byte(1 + r.IntN(255))
		}
		return b
	}
	cstr := func(max int) []byte { return append(str(max), 0) }
	var bodies [][]byte
	for range 300 {
		var b []byte
		b = append(b, cstr(5)...)
		b = append(b, byte(r.UintN(256)), byte(r.UintN(256)))
		b = append(b, cstr(20)...)
		b = append(b, byte(r.UintN(256)), byte(r.UintN(256)))
		b = append(b, cstr(20)...)
		b = append(b, byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256)))
		b = append(b, cstr(16)...)
		b = append(b, cstr(16)...)
		b = append(b, byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256)))
		sm := str(254)
		if r.IntN(5) == 0 {
			sm = nil
		}
		b = append(b, byte(len(sm)))
		b = append(b, sm...)
		for range r.IntN(4) {
			tag := []uint16{tagMessagePayload, 0x001E, 0x0427, 0x020C, uint16(r.UintN(1 << 16))}[r.IntN(5)]
			v := str(300)
			b = append(b, byte(tag>>8), byte(tag), byte(len(v)>>8), byte(len(v)))
			b = append(b, v...)
		}
		b = append(b, str(3)...) // stray padding, too short for a TLV
		bodies = append(bodies, b)
		for cut := range len(b) {
			bodies = append(bodies, b[:cut])
		}
		for range 5 {
			g := bytes.Clone(b)
			for range 1 + r.IntN(3) {
				g[r.IntN(len(g))] = byte(r.UintN(256))
			}
			bodies = append(bodies, g)
		}
		bodies = append(bodies, str(100))
	}
	var ok, failed int
	for i, body := range bodies {
		h := header{Seq: uint32(i)}
		got, gotErr := decodeDeliverSM(h, body)
		want, wantErr := deliverSMByGoSMPP(h, body)
		if (gotErr != nil) != (wantErr != nil) || errors.Is(gotErr, StatusInvOptParStream) != errors.Is(wantErr, StatusInvOptParStream) ||
			errors.Is(gotErr, StatusInvMsgLen) != errors.Is(wantErr, StatusInvMsgLen) {
			t.Fatalf("body %d %x:\n got error %v\nwant error %v", i, body, gotErr, wantErr)
		}
		if wantErr != nil {
			failed++
			continue
		}
		ok++
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("body %d %x:\n got %+v\nwant %+v", i, body, got, want)
		}
	}
	if ok < 300 || failed < 300 {
		t.Fatalf("%d bodies decoded, %d refused: want many of each", ok, failed)
	}
}

// TestDeliverSMTextTwice: a deliver_sm whose text is in both short_message
// and message_payload is read from the payload (some SMSCs put a cut copy
// in short_message; refused, the message would be lost); an empty payload
// beside a short_message, or a payload alone, is read.
func TestDeliverSMTextTwice(t *testing.T) {
	body := func(sm, payload []byte, withPayload bool) []byte {
		b := []byte{0, 1, 1}
		b = append(b, "12015550123\x00"...)
		b = append(b, 1, 1)
		b = append(b, "12015550100\x00"...)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(sm)))
		b = append(b, sm...)
		if withPayload {
			b = binary.BigEndian.AppendUint16(b, tagMessagePayload)
			b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
			b = append(b, payload...)
		}
		return b
	}
	for _, tc := range []struct {
		sm, payload string
		withPayload bool
		want        string
	}{
		{"short", "short and the payload", true, "short and the payload"},
		{"", "the payload", true, "the payload"},
		{"short", "", true, "short"},
		{"short", "", false, "short"},
	} {
		d, err := decodeDeliverSM(header{}, body([]byte(tc.sm), []byte(tc.payload), tc.withPayload))
		if err != nil || string(d.ShortMessage) != tc.want {
			t.Errorf("%q + %q: %v, %+v; want text %q", tc.sm, tc.payload, err, d, tc.want)
		}
	}
}

// BenchmarkDecodeDeliverSM: a delivery receipt's deliver_sm, read in place
// and through go-smpp's field map (as it was).
func BenchmarkDecodeDeliverSM(b *testing.B) {
	text := "id:0123456789 sub:001 dlvrd:001 submit date:2611280100 done date:2611280100 stat:DELIVRD err:000 text:hello"
	body := append([]byte{0, 1, 1}, "447700900123\x00"...)
	body = append(body, 1, 1)
	body = append(body, "12015550100\x00"...)
	body = append(body, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(text)))
	body = append(body, text...)
	for _, dec := range []struct {
		name string
		f    func(header, []byte) (*Deliver, error)
	}{{"in-place", decodeDeliverSM}, {"go-smpp", deliverSMByGoSMPP}} {
		b.Run(dec.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				if _, err := dec.f(header{Seq: uint32(i)}, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package smpp

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
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

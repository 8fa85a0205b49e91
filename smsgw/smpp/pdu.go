package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// Command ids used by the session (SMPP 3.4 section 5.1.2.1).
const (
	cmdGenericNack       uint32 = 0x80000000
	cmdBindTransceiver   uint32 = 0x00000009
	cmdSubmitSM          uint32 = 0x00000004
	cmdDeliverSM         uint32 = 0x00000005
	cmdUnbind            uint32 = 0x00000006
	cmdOutbind           uint32 = 0x0000000B
	cmdEnquireLink       uint32 = 0x00000015
	cmdAlertNotification uint32 = 0x00000102
	cmdDataSM            uint32 = 0x00000103

	respBit uint32 = 0x80000000
)

const (
	headerLen = 16
	// maxPDULen bounds command_length. fiorix's pdu.MaxSize (4 KiB) is too
	// small for a data_sm carrying a long message_payload.
	maxPDULen = 64 * 1024
	// maxShortMessage is the largest short_message SMPP 3.4 allows (sm_length
	// is one octet, 0..254).
	maxShortMessage = 254

	tagMessagePayload uint16 = 0x0424
	ifVersion34       byte   = 0x34
)

// header is a PDU header.
type header struct {
	Len, ID, Status, Seq uint32
}

// lengthError reports a command_length outside 16..64 KiB. The stream cannot
// be resynchronised after one.
type lengthError struct {
	h header
}

func (e *lengthError) Error() string {
	return fmt.Sprintf("smpp: invalid command_length %d (command_id 0x%08X)", e.h.Len, e.h.ID)
}

// readPDU reads one PDU. The body is a fresh slice of command_length-16
// bytes, so it may be retained. A command_length below 16 or above 64 KiB is
// reported as a *lengthError before anything is allocated.
func readPDU(r io.Reader) (header, []byte, error) {
	var b [headerLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return header{}, nil, err
	}
	h := header{
		Len:    binary.BigEndian.Uint32(b[0:4]),
		ID:     binary.BigEndian.Uint32(b[4:8]),
		Status: binary.BigEndian.Uint32(b[8:12]),
		Seq:    binary.BigEndian.Uint32(b[12:16]),
	}
	if h.Len < headerLen || h.Len > maxPDULen {
		return h, nil, &lengthError{h}
	}
	body := make([]byte, h.Len-headerLen)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, body, nil
}

// appendHeader appends a header with a zero command_length; setLen fixes it.
func appendHeader(b []byte, id, status, seq uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, status)
	return binary.BigEndian.AppendUint32(b, seq)
}

func setLen(b []byte) []byte {
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
	return b
}

// serialize encodes a fiorix PDU and appends tlvs sorted by tag. fiorix
// writes its own TLVs in map order, which makes the bytes differ from run
// to run, so TLVs are never handed to it.
func serialize(p pdu.Body, tlvs map[uint16][]byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := p.SerializeTo(&buf); err != nil {
		return nil, err
	}
	return appendTLVs(buf.Bytes(), tlvs)
}

// appendTLVs appends tlvs to the PDU b, sorted by tag, and sets its length.
func appendTLVs(b []byte, tlvs map[uint16][]byte) ([]byte, error) {
	tags := make([]uint16, 0, len(tlvs))
	for t := range tlvs {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	for _, t := range tags {
		v := tlvs[t]
		if len(v) > 0xFFFF {
			return nil, fmt.Errorf("smpp: TLV 0x%04X is %d bytes, max 65535", t, len(v))
		}
		b = binary.BigEndian.AppendUint16(b, t)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	if len(b) > maxPDULen {
		return nil, fmt.Errorf("smpp: PDU is %d bytes, max %d", len(b), maxPDULen)
	}
	return setLen(b), nil
}

func checkCString(field, s string, max int) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("smpp: %s contains a NUL byte", field)
	}
	if max > 0 && len(s) > max {
		return fmt.Errorf("smpp: %s is %d bytes, max %d", field, len(s), max)
	}
	return nil
}

func encodeBindTransceiver(seq uint32, systemID, password, systemType string) ([]byte, error) {
	p := pdu.NewBindTransceiver()
	p.Header().Seq = seq
	f := p.Fields()
	f.Set(pdufield.SystemID, systemID)
	f.Set(pdufield.Password, password)
	f.Set(pdufield.SystemType, systemType)
	f.Set(pdufield.InterfaceVersion, ifVersion34)
	f.Set(pdufield.AddrTON, uint8(0))
	f.Set(pdufield.AddrNPI, uint8(0))
	f.Set(pdufield.AddressRange, "")
	return serialize(p, nil)
}

// encodeSubmitSM validates s and encodes it. A validation error means
// nothing can be sent.
func encodeSubmitSM(seq uint32, s *Submit) ([]byte, error) {
	if err := errors.Join(
		checkCString("source address", s.Source.Addr, 20),
		checkCString("destination address", s.Dest.Addr, 20),
		checkCString("validity period", s.ValidityPeriod, 16),
	); err != nil {
		return nil, err
	}
	if len(s.ShortMessage) > maxShortMessage {
		return nil, fmt.Errorf("smpp: short_message is %d bytes, max %d; send longer text in TLV 0x0424 (message_payload)",
			len(s.ShortMessage), maxShortMessage)
	}
	// The body's fields in SMPP 3.4's order (§4.4.1), written straight
	// into the PDU: through go-smpp's field map, encoding was 5 % of the
	// gateway's CPU at full speed. TestSubmitSMAsGoSMPP holds the bytes
	// to go-smpp's.
	n := headerLen + 17 + len(s.Source.Addr) + len(s.Dest.Addr) + len(s.ValidityPeriod) + len(s.ShortMessage)
	for _, v := range s.TLVs {
		n += 4 + len(v)
	}
	b := appendHeader(make([]byte, 0, n), cmdSubmitSM, 0, seq)
	b = append(b, 0) // service_type: the SMSC's default
	b = append(b, s.Source.TON, s.Source.NPI)
	b = append(append(b, s.Source.Addr...), 0)
	b = append(b, s.Dest.TON, s.Dest.NPI)
	b = append(append(b, s.Dest.Addr...), 0)
	b = append(b, s.ESMClass, s.ProtocolID, s.PriorityFlag)
	b = append(b, 0) // schedule_delivery_time: at once
	b = append(append(b, s.ValidityPeriod...), 0)
	// registered_delivery, replace_if_present_flag, data_coding,
	// sm_default_msg_id, sm_length, short_message.
	b = append(b, s.RegisteredDelivery, 0, s.DataCoding, 0, byte(len(s.ShortMessage)))
	b = append(b, s.ShortMessage...)
	return appendTLVs(b, s.TLVs)
}

// encodeHeaderOnly encodes enquire_link, enquire_link_resp, unbind,
// unbind_resp and generic_nack, which have no body.
func encodeHeaderOnly(id, status, seq uint32) []byte {
	return setLen(appendHeader(make([]byte, 0, headerLen), id, status, seq))
}

// encodeDeliverResp encodes deliver_sm_resp or data_sm_resp (cmd is the
// request's): the header and an empty message_id, the whole body of both.
// (Through go-smpp, a deliver_sm_resp cost two maps for its one field.)
func encodeDeliverResp(cmd, seq uint32, st Status) []byte {
	b := appendHeader(make([]byte, 0, headerLen+1), cmd|respBit, uint32(st), seq)
	return setLen(append(b, 0))
}

// decodeFields decodes the mandatory fields in list, then TLVs. fiorix's
// List.Decode stops silently at the end of the body, so every field in list
// is checked for presence. An error in the TLVs (one running past the end
// of the body) wraps StatusInvOptParStream; the caller answers any other
// error ESME_RINVCMDLEN, the mandatory fields not fitting the length. Up
// to three bytes after the last TLV, too few for one, are ignored, as
// fiorix does: an SMSC's stray padding is no reason to refuse a message.
func decodeFields(list pdufield.List, body []byte) (pdufield.Map, map[uint16][]byte, error) {
	r := bytes.NewBuffer(body)
	f, err := list.Decode(r)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range list {
		if _, ok := f[k]; !ok {
			return nil, nil, fmt.Errorf("smpp: truncated body: %s missing", k)
		}
	}
	tlvs, err := decodeTLVs(r.Bytes())
	if err != nil {
		return nil, nil, err
	}
	return f, tlvs, nil
}

func fixed(f pdufield.Map, k pdufield.Name) byte {
	if v, ok := f[k].(*pdufield.Fixed); ok {
		return v.Data
	}
	return 0
}

func cstring(f pdufield.Map, k pdufield.Name) string {
	if v, ok := f[k]; ok {
		return v.String()
	}
	return ""
}

// decodeDeliverSM decodes a deliver_sm body (SMPP 3.4 section 4.6.1) as
// decodeFields would with the plain layout, reading the fields in place:
// through go-smpp's field map a receipt cost 2 KB of allocations, a tenth
// of the gateway's at full speed. The UDH stays in ShortMessage, for the
// reassembly code. A field the body ends before is an error (the caller
// answers ESME_RINVCMDLEN); so is a short_message longer than what is left;
// TLVs are read as decodeTLVs does. TestDeliverSMAsGoSMPP holds it to the
// go-smpp decoding, for valid, cut and garbled bodies.
func decodeDeliverSM(h header, body []byte) (*Deliver, error) {
	r := bodyReader{b: body}
	r.cstring("service_type")
	src := Address{TON: r.byte("source_addr_ton"), NPI: r.byte("source_addr_npi"), Addr: r.cstring("source_addr")}
	dst := Address{TON: r.byte("dest_addr_ton"), NPI: r.byte("dest_addr_npi"), Addr: r.cstring("destination_addr")}
	esm := r.byte("esm_class")
	r.byte("protocol_id")
	r.byte("priority_flag")
	r.cstring("schedule_delivery_time")
	r.cstring("validity_period")
	r.byte("registered_delivery")
	r.byte("replace_if_present_flag")
	dc := r.byte("data_coding")
	r.byte("sm_default_msg_id")
	n := int(r.byte("sm_length"))
	if r.missing != "" {
		return nil, fmt.Errorf("smpp: truncated body: %s missing", r.missing)
	}
	if len(r.b) < n {
		return nil, fmt.Errorf("smpp: short_message of %d bytes, %d left in the body", n, len(r.b))
	}
	sm := r.b[:n]
	tlvs, err := decodeTLVs(r.b[n:])
	if err != nil {
		return nil, err
	}
	d := &Deliver{Command: cmdDeliverSM, Seq: h.Seq, Source: src, Dest: dst, ESMClass: esm, DataCoding: dc, TLVs: tlvs, ShortMessage: sm}
	if p := tlvs[tagMessagePayload]; len(sm) == 0 || len(p) > 0 {
		// SMPP 3.4 5.3.2.32: with message_payload, sm_length is 0. Some
		// SMSCs send both, short_message a cut copy: the payload is the
		// message. (Refused, it would be lost: ESME_RINVMSGLEN is
		// permanent.)
		d.ShortMessage = p
	}
	return d, nil
}

// bodyReader reads a PDU body's mandatory fields in order. The first field
// the body ends before is named in missing, and every read after it gives
// zero values.
type bodyReader struct {
	b       []byte
	missing string
}

func (r *bodyReader) byte(name string) byte {
	if r.missing != "" || len(r.b) == 0 {
		r.miss(name)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// cstring reads a C-Octet String, its NUL left out.
func (r *bodyReader) cstring(name string) string {
	i := bytes.IndexByte(r.b, 0)
	if r.missing != "" || i < 0 {
		r.miss(name)
		return ""
	}
	s := string(r.b[:i])
	r.b = r.b[i+1:]
	return s
}

func (r *bodyReader) miss(name string) {
	if r.missing == "" {
		r.missing = name
	}
}

// decodeTLVs reads the TLVs that end a body, as go-smpp's pdutlv does: a
// later one of a tag replaces an earlier; one running past the end is an
// error wrapping StatusInvOptParStream; up to three bytes after the last,
// too few for one, are ignored. Values alias b. No TLVs: nil.
func decodeTLVs(b []byte) (map[uint16][]byte, error) {
	var tlvs map[uint16][]byte
	for len(b) >= 4 {
		tag, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		b = b[4:]
		if len(b) < n {
			return nil, fmt.Errorf("%w: TLV 0x%04X of %d bytes, %d left in the body", StatusInvOptParStream, tag, n, len(b))
		}
		if tlvs == nil {
			tlvs = make(map[uint16][]byte, 2)
		}
		tlvs[tag] = b[:n]
		b = b[n:]
	}
	return tlvs, nil
}

// decodeMessageID decodes the body of submit_sm_resp: message_id, a C-Octet
// String (SMPP 3.4 section 4.4.2). An SMSC that leaves off the terminating
// NUL sends the id as the rest of the body, which is taken as it is; padding
// (spaces) around the id is trimmed. An error response may have no body at
// all, which yields "".
func decodeMessageID(body []byte) string {
	if i := bytes.IndexByte(body, 0); i >= 0 {
		body = body[:i]
	}
	return string(bytes.TrimSpace(body))
}

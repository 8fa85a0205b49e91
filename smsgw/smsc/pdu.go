package smsc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// Status is an SMPP command_status. Non-zero values are errors.
type Status uint32

// Command status values the simulator sends or interprets.
const (
	StatusOK        Status = 0x00000000 // ESME_ROK
	StatusInvMsgLen Status = 0x00000001 // ESME_RINVMSGLEN
	StatusInvCmdLen Status = 0x00000002 // ESME_RINVCMDLEN
	StatusInvCmdID  Status = 0x00000003 // ESME_RINVCMDID
	StatusInvBndSts Status = 0x00000004 // ESME_RINVBNDSTS
	StatusAlyBnd    Status = 0x00000005 // ESME_RALYBND
	StatusSysErr    Status = 0x00000008 // ESME_RSYSERR
	StatusInvPaswd  Status = 0x0000000E // ESME_RINVPASWD
	StatusInvSysID  Status = 0x0000000F // ESME_RINVSYSID
	StatusMsgQFul   Status = 0x00000014 // ESME_RMSGQFUL
	StatusSubmitErr Status = 0x00000045 // ESME_RSUBMITFAIL
	StatusThrottled Status = 0x00000058 // ESME_RTHROTTLED
	StatusRxTAppn   Status = 0x00000064 // ESME_RX_T_APPN, temporary application error
	StatusRxPAppn   Status = 0x00000065 // ESME_RX_P_APPN, permanent application error
	StatusRxRAppn   Status = 0x00000066 // ESME_RX_R_APPN, message rejected
)

// String returns the status in hex, as SMPP logs usually show it.
func (s Status) String() string { return fmt.Sprintf("0x%08X", uint32(s)) }

func (s Status) Error() string {
	return fmt.Sprintf("smsc: command_status 0x%08X (%s)", uint32(s), pdu.Status(s).Error())
}

// Temporary reports whether a request answered with s is worth retrying.
func (s Status) Temporary() bool {
	switch s {
	case StatusSysErr, StatusMsgQFul, StatusThrottled, StatusRxTAppn:
		return true
	}
	return false
}

// TLV is an SMPP optional parameter.
type TLV struct {
	Tag   uint16
	Value []byte
}

// Optional parameter tags used by the simulator.
const (
	TagReceiptedMessageID uint16 = 0x001E
	TagSarMsgRefNum       uint16 = 0x020C
	TagSarTotalSegments   uint16 = 0x020E
	TagSarSegmentSeqnum   uint16 = 0x020F
	TagSCInterfaceVersion uint16 = 0x0210
	TagNetworkErrorCode   uint16 = 0x0423
	TagMessagePayload     uint16 = 0x0424
	TagMessageState       uint16 = 0x0427
)

// message_state values (SMPP 3.4 §5.2.28).
const (
	stateEnroute       = 1
	stateDelivered     = 2
	stateExpired       = 3
	stateUndeliverable = 5
	stateRejected      = 8
)

const (
	headerLen = 16
	// maxPDU bounds command_length. fiorix's decoder stops at 4096; the
	// simulator accepts larger PDUs (message_payload) and parses those itself.
	maxPDU = 64 << 10

	esmUDHI    = 0x40
	esmReceipt = 0x04
)

type header struct {
	Len    uint32
	ID     pdu.ID
	Status uint32
	Seq    uint32
}

func parseHeader(b []byte) header {
	return header{
		Len:    binary.BigEndian.Uint32(b[0:4]),
		ID:     pdu.ID(binary.BigEndian.Uint32(b[4:8])),
		Status: binary.BigEndian.Uint32(b[8:12]),
		Seq:    binary.BigEndian.Uint32(b[12:16]),
	}
}

// newFrame starts a PDU; finish sets its command_length.
func newFrame(capacity int, id pdu.ID, status, seq uint32) []byte {
	b := make([]byte, headerLen, headerLen+capacity)
	binary.BigEndian.PutUint32(b[4:8], uint32(id))
	binary.BigEndian.PutUint32(b[8:12], status)
	binary.BigEndian.PutUint32(b[12:16], seq)
	return b
}

func finish(b []byte) []byte {
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
	return b
}

func setSeq(b []byte, seq uint32) { binary.BigEndian.PutUint32(b[12:16], seq) }

func appendCString(b []byte, s string) []byte {
	b = append(b, s...)
	return append(b, 0)
}

func appendTLV(b []byte, tag uint16, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// respFrame is a response with an optional message_id / system_id body.
func respFrame(id pdu.ID, status Status, seq uint32, cstr string, withBody bool) []byte {
	b := newFrame(len(cstr)+1, id, uint32(status), seq)
	if withBody {
		b = appendCString(b, cstr)
	}
	return finish(b)
}

// DeliverOpts describes one crafted deliver_sm or data_sm for SendDeliver.
// Zero values are sent as zero; nothing is filled in for the caller.
type DeliverOpts struct {
	SystemID  string // send over a session bound with this system_id; "" = any session that can receive
	Seq       uint32 // sequence_number; 0 = the session's next
	UseDataSM bool   // send data_sm; ShortMessage then travels in message_payload unless TLVs has one

	ServiceType                            string
	Source, Dest                           string
	SourceTON, SourceNPI, DestTON, DestNPI byte
	ESMClass, ProtocolID, PriorityFlag     byte
	RegisteredDelivery, DataCoding         byte
	ShortMessage                           []byte // with its UDH when ESMClass has UDHI (0x40)
	TLVs                                   []TLV  // appended in order
}

var errTooLong = errors.New("smsc: short_message longer than 254 octets; use message_payload")

// encode builds the PDU with sequence number o.Seq (0 is patched in later).
func (o *DeliverOpts) encode() ([]byte, error) {
	size := 64 + len(o.Source) + len(o.Dest) + len(o.ShortMessage)
	for _, t := range o.TLVs {
		size += 4 + len(t.Value)
	}
	if o.UseDataSM {
		b := o.start(size, pdu.DataSMID)
		b = append(b, o.ESMClass, o.RegisteredDelivery, o.DataCoding)
		hasPayload := false
		for _, t := range o.TLVs {
			hasPayload = hasPayload || t.Tag == TagMessagePayload
		}
		if len(o.ShortMessage) > 0 && !hasPayload {
			b = appendTLV(b, TagMessagePayload, o.ShortMessage)
		}
		for _, t := range o.TLVs {
			b = appendTLV(b, t.Tag, t.Value)
		}
		return finish(b), nil
	}
	if len(o.ShortMessage) > 254 {
		return nil, errTooLong
	}
	b := o.start(size, pdu.DeliverSMID)
	b = append(b, o.ESMClass, o.ProtocolID, o.PriorityFlag)
	b = append(b, 0, 0) // schedule_delivery_time, validity_period: empty C-strings
	b = append(b, o.RegisteredDelivery, 0, o.DataCoding, 0, byte(len(o.ShortMessage)))
	b = append(b, o.ShortMessage...)
	for _, t := range o.TLVs {
		b = appendTLV(b, t.Tag, t.Value)
	}
	return finish(b), nil
}

// start begins a deliver_sm or data_sm frame with the fields both share:
// service_type and the source and destination addresses.
func (o *DeliverOpts) start(size int, id pdu.ID) []byte {
	b := newFrame(size, id, 0, o.Seq)
	b = appendCString(b, o.ServiceType)
	b = append(b, o.SourceTON, o.SourceNPI)
	b = appendCString(b, o.Source)
	b = append(b, o.DestTON, o.DestNPI)
	return appendCString(b, o.Dest)
}

// smPDU is the part of submit_sm and data_sm the simulator keeps.
type smPDU struct {
	ServiceType                            string
	Source, Dest                           string
	SourceTON, SourceNPI, DestTON, DestNPI byte
	ESMClass, RegisteredDelivery           byte
	DataCoding                             byte
	ShortMessage                           []byte
	TLVs                                   map[uint16][]byte
}

func fieldString(f pdufield.Map, n pdufield.Name) string {
	if v, ok := f[n]; ok && v != nil {
		return v.String()
	}
	return ""
}

func fieldByte(f pdufield.Map, n pdufield.Name) byte {
	if v, ok := f[n]; ok && v != nil {
		if b := v.Bytes(); len(b) > 0 {
			return b[0]
		}
	}
	return 0
}

// bindReq is a decoded bind_transmitter / bind_receiver / bind_transceiver.
type bindReq struct {
	SystemID, Password, SystemType string
	Version                        byte
}

func decodeBind(frame []byte) (*bindReq, error) {
	p, err := pdu.Decode(bytes.NewReader(frame))
	if err != nil {
		return nil, err
	}
	f := p.Fields()
	if _, ok := f[pdufield.AddressRange]; !ok {
		return nil, errors.New("smsc: bind truncated")
	}
	return &bindReq{
		SystemID:   fieldString(f, pdufield.SystemID),
		Password:   fieldString(f, pdufield.Password),
		SystemType: fieldString(f, pdufield.SystemType),
		Version:    fieldByte(f, pdufield.InterfaceVersion),
	}, nil
}

// parseSM parses a submit_sm (dataSM false) or data_sm body. It is written
// by hand rather than with fiorix's pdufield.List.Decode because fiorix has no
// data_sm, refuses PDUs over 4096 octets, stops silently at a truncated body,
// and builds a map per PDU: on the submit path it costs 3x the throughput
// (BenchmarkSink: ~170k against ~540k msg/s). FuzzParseSubmit checks it
// against fiorix's decoder.
func parseSM(body []byte, dataSM bool) (*smPDU, error) {
	r := reader{b: body}
	m := &smPDU{}
	m.ServiceType = r.cstring()
	m.SourceTON, m.SourceNPI = r.byte(), r.byte()
	m.Source = r.cstring()
	m.DestTON, m.DestNPI = r.byte(), r.byte()
	m.Dest = r.cstring()
	m.ESMClass = r.byte()
	if dataSM {
		m.RegisteredDelivery, m.DataCoding = r.byte(), r.byte()
	} else {
		r.byte() // protocol_id
		r.byte() // priority_flag
		r.cstring()
		r.cstring()
		m.RegisteredDelivery = r.byte()
		r.byte() // replace_if_present_flag
		m.DataCoding = r.byte()
		r.byte() // sm_default_msg_id
		n := int(r.byte())
		m.ShortMessage = r.next(n)
	}
	if r.err != nil {
		return nil, r.err
	}
	tlvs, err := parseTLVs(r.b)
	if err != nil {
		return nil, err
	}
	m.TLVs = tlvs
	if dataSM {
		m.ShortMessage = tlvs[TagMessagePayload]
	}
	return m, nil
}

func parseTLVs(b []byte) (map[uint16][]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	t, err := pdutlv.DecodeTLV(bytes.NewBuffer(b))
	if err != nil {
		return nil, err
	}
	m := make(map[uint16][]byte, len(t))
	for tag, v := range t {
		m[uint16(tag)] = v.Bytes()
	}
	return m, nil
}

type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("smsc: PDU body too short")

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) cstring() string {
	i := bytes.IndexByte(r.b, 0)
	if i < 0 {
		r.err = errShort
		r.b = nil
		return ""
	}
	s := string(r.b[:i])
	r.b = r.b[i+1:]
	return s
}

func (r *reader) next(n int) []byte {
	if len(r.b) < n {
		r.err = errShort
		r.b = nil
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

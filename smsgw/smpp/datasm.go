package smpp

import (
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// fiorix's pdu.Decode returns "PDU not implemented" for data_sm and
// data_sm_resp. data_sm's mandatory fields are all ones pdufield knows, so
// the body is decoded with a pdufield.List of SMPP 3.4 section 4.7.1's
// layout; data_sm_resp (section 4.7.2) is a message_id C-string with
// optional TLVs, of which we send none.

var dataSMFields = pdufield.List{
	pdufield.ServiceType,
	pdufield.SourceAddrTON,
	pdufield.SourceAddrNPI,
	pdufield.SourceAddr,
	pdufield.DestAddrTON,
	pdufield.DestAddrNPI,
	pdufield.DestinationAddr,
	pdufield.ESMClass,
	pdufield.RegisteredDelivery,
	pdufield.DataCoding,
}

// decodeDataSM decodes a data_sm body. ShortMessage is the message_payload
// TLV (nil when absent, as in most delivery receipts, which carry
// receipted_message_id and message_state TLVs instead).
func decodeDataSM(h header, body []byte) (*Deliver, error) {
	f, tlvs, err := decodeFields(dataSMFields, body)
	if err != nil {
		return nil, err
	}
	return &Deliver{
		Command:      cmdDataSM,
		Seq:          h.Seq,
		Source:       Address{TON: fixed(f, pdufield.SourceAddrTON), NPI: fixed(f, pdufield.SourceAddrNPI), Addr: cstring(f, pdufield.SourceAddr)},
		Dest:         Address{TON: fixed(f, pdufield.DestAddrTON), NPI: fixed(f, pdufield.DestAddrNPI), Addr: cstring(f, pdufield.DestinationAddr)},
		ESMClass:     fixed(f, pdufield.ESMClass),
		DataCoding:   fixed(f, pdufield.DataCoding),
		ShortMessage: tlvs[tagMessagePayload],
		TLVs:         tlvs,
	}, nil
}

// encodeGenericNack encodes a generic_nack (SMPP 3.4 section 4.3).
func encodeGenericNack(seq uint32, st Status) []byte {
	return encodeHeaderOnly(cmdGenericNack, uint32(st), seq)
}

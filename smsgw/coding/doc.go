// Package coding implements SMS text encodings (GSM 03.38 / 3GPP TS 23.038 default alphabet with the extension table, Latin-1, UCS-2) and concatenation (3GPP TS 23.040 UDH IE 0x00/0x08) for SMPP 3.4 short messages.
//
// GSM text is carried unpacked, one septet per octet, as SMPP 3.4 transports data_coding 0.
// Segment chooses the coding and splits outgoing text; SplitUDH and Decode take incoming
// short_message fields apart; LanguageShift, DecodeShift and Unshift read GSM text under the
// national language locking and single shift tables of TS 23.038 annex A (UDH IE 0x25/0x24),
// as phones in Turkey, Spain, Portugal and India send it (outgoing text uses the default tables).
// Reassembly of parts is left to the caller. For an SMSC whose data_coding 0 is Latin-1 or IA5
// rather than GSM 03.38, the methods of Alphabet do the same.
package coding

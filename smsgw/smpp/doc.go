// Package smpp implements the ESME side of an SMPP 3.4 session: bind_transceiver, a blocking request window, enquire_link in both directions, and inbound deliver_sm/data_sm dispatch.
//
// The PDU field codecs come from github.com/fiorix/go-smpp (packages pdu
// and pdufield), except for the PDUs every message costs (submit_sm,
// deliver_sm and their responses) and TLVs, which this package writes and
// reads in place; tests hold those to go-smpp's. The session itself is this package's own: fiorix's
// Transceiver matches responses by sequence number alone, drops the bind on a
// data_sm, and always answers deliver_sm with ESME_ROK from its single read
// loop (DESIGN.md section 5). What this package adds:
//
//   - PDU framing with a 64 KiB limit (fiorix caps PDUs at 4 KiB, too small
//     for a data_sm carrying message_payload);
//   - a data_sm decoder and data_sm_resp encoder (datasm.go);
//   - responses matched by sequence number and command_id, so a deliver_sm
//     from the SMSC that reuses the sequence number of one of our in-flight
//     submit_sm is handled as the request it is;
//   - a window that makes Submit wait for a free slot, an optional
//     throughput limit, a pause of the bind's submits while the SMSC
//     answers ESME_RTHROTTLED (throttle.go), and an outcome for every
//     Submit: a message id, a Status, ErrNotBound (nothing was sent) or
//     ErrUnknownOutcome;
//   - deliver_sm and data_sm handed to a Handler on a bounded worker pool,
//     answered with the Handler's Status only after it returns;
//   - a phone's messages kept in order when one is answered ESME_RX_T_APPN
//     and comes again later (hold.go);
//   - enquire_link in both directions, unbind in both directions, a new
//     bind when the SMSC answers ESME_RINVBNDSTS, and reconnection with
//     jittered exponential backoff that only a session that lasted
//     ReconnectMax resets.
package smpp

// Package smsc is an SMPP 3.4 SMSC simulator: it accepts binds, answers submit_sm, keeps virtual phones' inboxes, sends delivery receipts, and lets a person or a test send a message from a phone.
//
// It is the carrier side of the SMPP link, for development, `make demo` and
// integration tests. A Server is shaped like net/http/httptest:
//
//	srv := smsc.NewServer(smsc.Config{SystemID: "gw", Password: "secret"})
//	addr, err := srv.Start("") // 127.0.0.1, a free port
//	defer srv.Close()
//	...
//	msgs, err := srv.WaitMessages(ctx, 1)
//	err = srv.SendMO(ctx, "+12015550123", "+12015550100", "hi")
//
// Behaviour (receipt outcome, receipt style, id format, the order of
// receipt and submit_sm_resp, throttling) is set in Config and can be changed
// while the server runs with SetConfig. HTTPHandler serves a small page and a
// JSON API for people and tests.
//
// The SMSC is written independently of the gateway's own SMPP client so that
// each checks the other. Binds are decoded with fiorix's pdu codec; submit_sm
// and data_sm are parsed here (checked against fiorix by a fuzz test) for
// speed and because fiorix lacks data_sm. Outgoing PDUs are encoded here,
// because fiorix serialises deliver_sm with a stray UDH-length byte.
package smsc

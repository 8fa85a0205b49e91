// Package faults is Switchboard's fault suite: real processes under a steady
// load while faults are injected from outside, each scenario ending with a
// tally that must balance.
//
// The tests are behind the build tag "faults" (plain `go test ./...` compiles
// nothing here); `make faults` runs them:
//
//	go test -tags faults -count=1 -timeout 15m ./internal/faults
//
// Every scenario builds the same picture: the switchboard binary (built once
// per run) as child processes, a real XMPP server (Prosody; ejabberd for two
// instances), a real store (PostgreSQL or a SQLite file), and the SMSC
// simulator on a fixed loopback port so that it can be stopped and started
// again on the same address. Test users send messages with receipt requests
// and unique bodies to phone numbers at a steady rate; phones send messages to
// the users. The test plays a carrier that keeps its delivery receipts until
// an ESME acknowledges them (the simulator's own receipts are off), and makes
// every tenth message fail with UNDELIV so that both outcomes are exercised.
//
// The tally, per scenario:
//
//   - sent: stanzas the users wrote; accepted: the ones the gateway stored or
//     answered; in_transit: the ones neither stored nor answered. Only a fault
//     that kills a holder of unacknowledged stream data explains those (kill -9
//     of a gateway with messages read but not yet committed, a restarting XMPP
//     server: XEP-0114 and c2s without stream management acknowledge nothing),
//     and only for messages sent in the seconds around it; any other counts
//     as lost.
//   - accepted = delivered (an XEP-0184 receipt) + failed (a message error) +
//     lost, and lost must be 0: a stored message whose sender never learns
//     its outcome within the drain time is lost.
//   - duplicates: submits of one body beyond the first at the SMSC, outcomes
//     of one message beyond the first at its sender, and arrivals of one
//     phone message beyond the first at its user. The delivery rules are
//     at-least-once around an unknown outcome, so each is bounded per fault:
//     at the SMSC one window (smpp.window) when the bind drops, every window
//     sent until enquire_link declares a hung SMSC dead, and the messages a
//     gateway had claimed (64) when it dies or its store goes away; on the
//     XMPP side one notice batch (256), which also covers a phone message the
//     SMSC sends again because its deliver_sm_resp was lost. Throttling
//     (definite answers) allows none; SIGTERM allows none at the SMSC.
//   - mo: phone messages the SMSC got ESME_ROK for (it retries the others,
//     as carriers do); every one must reach its user.
//
// Each scenario logs one line:
//
//	scenario NAME: accepted=… delivered=… failed=… lost=0 duplicates=… (…)
//
// FAULTS_RATE (user messages per second per scenario, default 40),
// FAULTS_SECONDS (length of the load, default 12) and FAULTS_MO_RATE
// (phone messages per second, default a quarter of FAULTS_RATE) make longer
// or heavier local runs.
package faults

package smsc

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// TestStall: a stalled SMSC holds the connection and answers nothing — not
// submit_sm, not enquire_link, not a new bind — and answers what it held
// once the stall is cleared.
func TestStall(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	c := bound(t, addr, pdu.NewBindTransceiver)
	srv.SetConfig(func(c *Config) { c.Stall = true })

	seq := c.submit(sub{src: "12015550100", dst: "12015550123", rd: 0, sm: []byte("held")})
	el := pdu.NewEnquireLink()
	el.Header().Seq = c.nextSeq()
	c.write(el)
	var ne net.Error
	if _, _, err := c.readFrame(300 * time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("stalled SMSC answered: %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages accepted while stalled", n)
	}
	c2 := dial(t, addr) // the listener still accepts
	b := pdu.NewBindTransceiver()
	b.Header().Seq = 1
	b.Fields().Set("system_id", "gw")
	c2.write(b)
	if _, _, err := c2.readFrame(300 * time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("stalled SMSC answered a bind: %v", err)
	}

	srv.SetConfig(func(c *Config) { c.Stall = false })
	h, _, _ := c.expect(pdu.SubmitSMRespID)
	if h.Seq != seq || h.Status != 0 {
		t.Errorf("held submit answered seq %d status %#x, want seq %d status 0", h.Seq, uint32(h.Status), seq)
	}
	c.expect(pdu.EnquireLinkRespID)
	c2.expect(pdu.BindTransceiverRespID)
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages after the stall, want 1", n)
	}
}

// TestStallClosedConnection: a PDU held by a stall is handled when the
// stall ends even though the ESME closed the connection meanwhile (the
// SMSC took it; the ESME never learns the outcome), and then the session ends.
func TestStallClosedConnection(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	c := bound(t, addr, pdu.NewBindTransceiver)
	srv.SetConfig(func(c *Config) { c.Stall = true })
	c.submit(sub{src: "12015550100", dst: "12015550123", sm: []byte("unknown outcome")})
	time.Sleep(50 * time.Millisecond) // let the reader take it and stall
	c.conn.Close()
	srv.SetConfig(func(c *Config) { c.Stall = false })
	waitFor(t, func() bool { return srv.Bound() == 0 })
	if ms := srv.Messages(); len(ms) != 1 || ms[0].Text != "unknown outcome" {
		t.Errorf("messages after the stall: %d, want the held one", len(ms))
	}
}

// TestStallDropSessions: DropSessions ends stalled sessions at once.
func TestStallDropSessions(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	c := bound(t, addr, pdu.NewBindTransceiver)
	srv.SetConfig(func(c *Config) { c.Stall = true })
	c.submit(sub{src: "12015550100", dst: "12015550123", sm: []byte("never")})
	time.Sleep(50 * time.Millisecond)
	srv.DropSessions()
	waitFor(t, func() bool { return srv.Bound() == 0 })
	srv.SetConfig(func(c *Config) { c.Stall = false })
	time.Sleep(5 * stallPoll)
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages accepted from a dropped session", n)
	}
}

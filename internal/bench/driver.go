package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// driver is the XMPP side of a run: it sends users' messages and reports,
// through the recorder, the receipts, errors and messages from phones that
// reach the users.
type driver interface {
	componentAddr() string // where Switchboard connects as a component
	// start waits for Switchboard's component connection, or for sb, the
	// Switchboard process, to exit.
	start(ctx context.Context, secret string, sb *child) error
	send(i int) error // message i, from user i%K to phone i
	flush() error
	otherCPU() map[string]time.Duration // CPU used so far by other servers in the path
	close()
}

// componentDriver plays the XMPP server: one XEP-0114 connection.
type componentDriver struct {
	rec      *recorder
	o        Options
	ln       net.Listener
	srv      *fakeServer
	nonce    string
	buf      []byte
	readDone chan struct{} // closed when readLoop returned
}

func newComponentDriver(rec *recorder, o Options) (*componentDriver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &componentDriver{rec: rec, o: o, ln: ln, nonce: randomHex(3)}, nil
}

func (d *componentDriver) componentAddr() string { return d.ln.Addr().String() }

func (d *componentDriver) start(ctx context.Context, secret string, sb *child) error {
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := d.ln.Accept()
		ch <- accepted{c, err}
	}()
	// abandon stops the accept and closes what it may have accepted meanwhile.
	abandon := func(err error) error {
		d.ln.Close()
		if a := <-ch; a.c != nil {
			a.c.Close()
		}
		return err
	}
	var a accepted
	select {
	case a = <-ch:
	case <-sb.done:
		return abandon(fmt.Errorf("bench: switchboard exited: %v", sb.err))
	case <-time.After(20 * time.Second):
		return abandon(errors.New("bench: switchboard did not connect as a component"))
	case <-ctx.Done():
		return abandon(ctx.Err())
	}
	if a.err != nil {
		return a.err
	}
	srv, err := acceptComponent(a.c, CompDomain, secret)
	if err != nil {
		a.c.Close()
		return err
	}
	d.srv = srv
	d.readDone = make(chan struct{})
	go func() {
		defer close(d.readDone)
		d.readLoop()
	}()
	return nil
}

func (d *componentDriver) readLoop() {
	for {
		st, err := d.srv.readStanza()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				d.rec.gotError("xmpp stream: " + err.Error())
			}
			return
		}
		now := d.rec.now()
		var ack func([]byte) error
		if d.o.Relay {
			ack = d.srv.ackRelay
		}
		handleStanza(d.rec, d.nonce, st, now, d.srv.answerIQ, ack)
		if d.o.Relay && d.srv.br.Buffered() == 0 {
			// The receipts written since the last read, at once, as a
			// server writes what it has when it runs out of input.
			if err := d.srv.flush(); err != nil {
				d.rec.gotError("xmpp stream: " + err.Error())
				return
			}
		}
	}
}

// handleStanza interprets one stanza that reached a user (or the server).
// ack, when set, acknowledges a message of the run relayed to a user: it
// counts as submitted, and its receipt as sent, then.
func handleStanza(rec *recorder, nonce string, st []byte, now int64, answerIQ, ack func([]byte) error) {
	switch {
	case bytes.HasPrefix(st, []byte("<iq")):
		if answerIQ != nil {
			answerIQ(st)
		}
	case bytes.HasPrefix(st, []byte("<message")):
		if string(attr(st, "type")) == "error" {
			cond := "?"
			if i := bytes.Index(st, []byte("<error")); i >= 0 {
				if j := bytes.Index(st[i+6:], []byte("<")); j >= 0 {
					cond = string(bytes.Fields(st[i+6+j+1:])[0])
				}
			}
			rec.gotError(fmt.Sprintf("message error for id %s: %s", attr(st, "id"), cond))
			return
		}
		if ack != nil {
			if idx, ok := stanzaIndex(attr(st, "id"), nonce); ok {
				rec.submitted(idx, now)
				rec.receiptAt(idx, rec.now())
				if err := ack(st); err != nil {
					rec.gotError("xmpp stream: " + err.Error())
				}
				return
			}
		}
		if id, ok := childAttr(st, "received", "id"); ok {
			if idx, ok := stanzaIndex(id, nonce); ok {
				rec.gotReceipt(idx, now)
			}
			return
		}
		if b, ok := elementText(st, "body"); ok {
			if idx, ok := markerIndex(b, '#'); ok {
				rec.gotMO(idx, b, now)
			}
		}
	}
}

// appendStanzaID and stanzaIndex name message i of a run: b<nonce>-<i>.
func appendStanzaID(b []byte, nonce string, i int) []byte {
	b = append(b, 'b')
	b = append(b, nonce...)
	b = append(b, '-')
	return strconv.AppendInt(b, int64(i), 10)
}

func stanzaIndex(id []byte, nonce string) (int, bool) {
	p := []byte("b" + nonce + "-")
	if !bytes.HasPrefix(id, p) {
		return 0, false
	}
	n, err := strconv.Atoi(string(id[len(p):]))
	return n, err == nil
}

// appendMessage appends message i of a run to b: from user k, or without a
// from attribute when k < 0 (the user's server stamps it), to phone i, or
// when to ≥ 0 to user to's number, asking for a receipt. It allocates
// nothing once b has grown.
func appendMessage(b []byte, k int, nonce string, i, to int) []byte {
	b = append(b, "<message "...)
	if k >= 0 {
		b = append(b, "from='"...)
		b = appendUserJID(b, k)
		b = append(b, "/r' "...)
	}
	b = append(b, "to='"...)
	if to >= 0 {
		b = appendNumber(b, 9000+to)
	} else {
		b = appendPhoneNumber(b, i)
	}
	b = append(b, "@"+CompDomain+"' id='"...)
	b = appendStanzaID(b, nonce, i)
	b = append(b, "' type='chat'><body>"...)
	b = appendBody(b, i)
	return append(b, "</body><request xmlns='urn:xmpp:receipts'/></message>"...)
}

func (d *componentDriver) send(i int) error {
	k, to := i%d.o.Users, -1
	if d.o.Relay {
		to = (k + 1) % d.o.Users // the next user: every user sends and receives
	}
	d.buf = appendMessage(d.buf[:0], k, d.nonce, i, to)
	return d.srv.write(d.buf, false)
}

func (d *componentDriver) flush() error { return d.srv.flush() }

func (d *componentDriver) otherCPU() map[string]time.Duration { return nil }

func (d *componentDriver) close() {
	d.ln.Close()
	if d.srv != nil {
		d.srv.write([]byte("</stream:stream>"), true)
		d.srv.conn.Close()
		<-d.readDone
	}
}

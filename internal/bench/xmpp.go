package bench

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// fakeServer is the XMPP server's side of one XEP-0114 connection: it accepts
// the component's handshake, answers IQs addressed to the server (the
// component's Sync pings), and reads every other top-level stanza (readStanza).
type fakeServer struct {
	conn net.Conn
	br   *bufio.Reader

	mu sync.Mutex // guards bw
	bw *bufio.Writer
}

// acceptComponent does the server side of the XEP-0114 handshake on conn:
// the component's handshake must be hex(sha1(streamID + secret)).
func acceptComponent(conn net.Conn, domain, secret string) (*fakeServer, error) {
	s := &fakeServer{conn: conn, br: bufio.NewReaderSize(conn, 64<<10), bw: bufio.NewWriterSize(conn, 64<<10)}
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	defer conn.SetDeadline(time.Time{})
	// The component's stream header (after an optional XML declaration).
	for {
		tag, err := s.readTag()
		if err != nil {
			return nil, fmt.Errorf("bench: xmpp: reading stream header: %w", err)
		}
		if bytes.HasPrefix(tag, []byte("<stream:stream")) || bytes.HasPrefix(tag, []byte("<stream ")) {
			break
		}
	}
	id := randomHex(8)
	fmt.Fprintf(s.bw, "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='%s' id='%s'>", domain, id)
	if err := s.bw.Flush(); err != nil {
		return nil, err
	}
	st, err := s.readStanza()
	if err != nil {
		return nil, fmt.Errorf("bench: xmpp: reading handshake: %w", err)
	}
	sum := sha1.Sum([]byte(id + secret))
	want := hex.EncodeToString(sum[:])
	got := string(bytes.TrimSpace(innerText(st)))
	if !bytes.HasPrefix(st, []byte("<handshake")) || got != want {
		s.bw.WriteString("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
		s.bw.Flush()
		return nil, fmt.Errorf("bench: xmpp: bad handshake %q", st)
	}
	s.bw.WriteString("<handshake/>")
	return s, s.bw.Flush()
}

// readTag returns the next markup tag (from '<' to '>'), skipping text.
func (s *fakeServer) readTag() ([]byte, error) {
	if _, err := s.br.ReadSlice('<'); err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	rest, err := s.br.ReadBytes('>')
	if err != nil {
		return nil, err
	}
	return append([]byte{'<'}, rest...), nil
}

// readStanza returns the next complete top-level element as raw bytes. It
// relies on what encoding/xml writes: no '>' unescaped inside attribute
// values or text, no CDATA. io.EOF means the stream ended.
func (s *fakeServer) readStanza() ([]byte, error) {
	var buf []byte
	depth := 0
	for {
		// Text up to the next tag.
		chunk, err := s.br.ReadSlice('<')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				if depth > 0 {
					buf = append(buf, chunk...)
				}
				continue
			}
			return nil, err
		}
		if depth > 0 {
			buf = append(buf, chunk[:len(chunk)-1]...)
		}
		start := len(buf)
		buf = append(buf, '<')
		for {
			part, err := s.br.ReadSlice('>')
			buf = append(buf, part...)
			if err == nil {
				break
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				return nil, err
			}
		}
		tag := buf[start:]
		switch {
		case len(tag) > 1 && (tag[1] == '?' || tag[1] == '!'):
			buf = buf[:start]
		case len(tag) > 1 && tag[1] == '/':
			if depth == 0 { // </stream:stream>
				return nil, io.EOF
			}
			depth--
			if depth == 0 {
				return buf, nil
			}
		case tag[len(tag)-2] == '/':
			if depth == 0 {
				return buf, nil
			}
		default:
			depth++
		}
	}
}

// write sends raw stanzas; flush says whether to flush now.
func (s *fakeServer) write(p []byte, flush bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.bw.Write(p); err != nil {
		return err
	}
	if flush {
		return s.bw.Flush()
	}
	return nil
}

func (s *fakeServer) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bw.Flush()
}

// ackRelay answers a message relayed to a user, as that user's client
// would: with an XEP-0184 receipt from the user's resource to the number
// JID it came from. It is written, not flushed.
func (s *fakeServer) ackRelay(st []byte) error {
	return s.write(appendAck(nil, st, true), false)
}

// appendAck appends to b the receipt for message st, from its recipient:
// from the recipient's resource r when from is set (a server writing it),
// else with no from (a client's, which its server stamps).
func appendAck(b, st []byte, from bool) []byte {
	id := attr(st, "id")
	b = append(b, "<message "...)
	if from {
		b = append(b, "from='"...)
		b = append(b, attr(st, "to")...)
		b = append(b, "/r' "...)
	}
	b = append(b, "to='"...)
	b = append(b, attr(st, "from")...)
	b = append(b, "' id='a"...)
	b = append(b, id...)
	b = append(b, "'><received xmlns='urn:xmpp:receipts' id='"...)
	b = append(b, id...)
	return append(b, "'/></message>"...)
}

// answerIQ replies to an IQ get or set with an empty result (pings, and
// anything else the component asks the server).
func (s *fakeServer) answerIQ(st []byte) error {
	typ := attr(st, "type")
	if string(typ) != "get" && string(typ) != "set" {
		return nil
	}
	reply := fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'/>", attr(st, "id"), attr(st, "to"), attr(st, "from"))
	return s.write([]byte(reply), true)
}

// attr returns the value of attribute name in the first tag of st (raw, not unescaped).
func attr(st []byte, name string) []byte {
	end := bytes.IndexByte(st, '>')
	if end < 0 {
		end = len(st)
	}
	tag := st[:end]
	for _, q := range []byte{'\'', '"'} {
		key := []byte(" " + name + "=" + string(q))
		if i := bytes.Index(tag, key); i >= 0 {
			v := tag[i+len(key):]
			if j := bytes.IndexByte(v, q); j >= 0 {
				return v[:j]
			}
		}
	}
	return nil
}

// childAttr returns attribute name of the first element <child …> inside st.
func childAttr(st []byte, child, name string) ([]byte, bool) {
	i := bytes.Index(st, []byte("<"+child))
	if i < 0 {
		return nil, false
	}
	return attr(st[i:], name), true
}

// innerText returns the text between the first tag's '>' and the next '<'.
func innerText(st []byte) []byte {
	i := bytes.IndexByte(st, '>')
	if i < 0 {
		return nil
	}
	rest := st[i+1:]
	if j := bytes.IndexByte(rest, '<'); j >= 0 {
		return rest[:j]
	}
	return rest
}

// elementText returns the text of the first <name> element in st.
func elementText(st []byte, name string) ([]byte, bool) {
	i := bytes.Index(st, []byte("<"+name+">"))
	if i < 0 {
		i = bytes.Index(st, []byte("<"+name+" "))
		if i < 0 {
			return nil, false
		}
	}
	return innerText(st[i:]), true
}

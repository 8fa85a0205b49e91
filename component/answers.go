package component

// The component's own requests to the XMPP server (pings, the server's
// uptime, privileged roster gets and sets) and their answers.
//
// Several instances may connect as one component (ejabberd takes them and
// spreads the stanzas to the component over them, at random by default):
// the answer to one instance's request may then come to another. An answer
// no request of this instance waits for is handed on (Config.HandOn; the
// store sends it to every instance through PostgreSQL), and answers handed
// on by the others come in through Answer.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"sync"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// answerWaiters are the requests waiting for their answers, by id.
type answerWaiters struct {
	mu sync.Mutex
	m  map[string]answerWaiter
}

type answerWaiter struct {
	to jid.JID // the request's addressee: the answer comes from it
	ch chan []xml.Token
}

func (w *answerWaiters) add(id string, a answerWaiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = make(map[string]answerWaiter)
	}
	w.m[id] = a
}

func (w *answerWaiters) remove(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, id)
}

// take hands toks, an answer with id from from, to the request waiting for
// it; it reports whether one was.
func (w *answerWaiters) take(id, from string, toks []xml.Token) bool {
	w.mu.Lock()
	a, ok := w.m[id]
	ok = ok && sameAddress(from, a.to)
	if ok {
		delete(w.m, id)
	}
	w.mu.Unlock()
	if ok {
		a.ch <- toks // buffered for one
	}
	return ok
}

// sameAddress tells whether from, an answer's sender, is to, its request's
// addressee (an empty from is the server itself: RFC 6120 8.1.2.1).
func sameAddress(from string, to jid.JID) bool {
	if from == "" {
		return to.Localpart() == "" && to.Resourcepart() == ""
	}
	f, err := jid.Parse(from)
	return err == nil && f.Equal(to)
}

// sendIQ sends iq (a get or set; its id is set here if empty) with payload
// and waits for its answer, which may come on this session or, handed on
// by another instance, through Answer. A type='error' answer is an answer:
// the caller reads it.
func (c *Component) sendIQ(ctx context.Context, s *xmpp.Session, iq stanza.IQ, payload xml.TokenReader) (xmlstream.TokenReadCloser, error) {
	if iq.ID == "" {
		iq.ID = rand.Text() // 128 random bits: no instance repeats it
	}
	ch := make(chan []xml.Token, 1)
	c.waiters.add(iq.ID, answerWaiter{to: iq.To, ch: ch})
	defer c.waiters.remove(iq.ID)
	callCtx, release := callContext(ctx)
	err := s.Send(callCtx, iq.Wrap(payload))
	release()
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = ctx.Err() // context.DeadlineExceeded, as ctx itself reports
		}
		return nil, err
	}
	select {
	case toks := <-ch:
		return &tokenSlice{toks: toks}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// handleAnswer reads an IQ result or error, start, whole from t and hands
// it to the request waiting for it, or, if none here does, on to the
// other instances (Config.HandOn).
func (c *Component) handleAnswer(t xml.TokenReader, start xml.StartElement) error {
	toks, err := readAnswer(start, t)
	if err != nil {
		return err
	}
	from, _, id, _ := stanzaAttrs(start.Attr)
	if c.waiters.take(id, from, toks) || c.handOn == nil {
		return nil
	}
	b, err := encodeTokens(toks)
	if err != nil || len(b) > c.cfg.HandOnMax {
		c.log.Debug().Err(err).Int("bytes", len(b)).Str("id", id).Msg("an answer to no request of this instance, too large to hand on, dropped")
		return nil
	}
	select {
	case c.handOn <- b:
	default:
		c.log.Warn().Str("id", id).Msg("answers to hand on to the other instances are piling up: one dropped")
	}
	return nil
}

// Answer takes an answer another instance handed on (see Config.HandOn):
// a request of this one waiting for it gets it; others are ignored.
func (c *Component) Answer(stanzaXML []byte) {
	d := xml.NewDecoder(bytes.NewReader(stanzaXML))
	tok, err := d.Token()
	start, ok := tok.(xml.StartElement)
	if err != nil || !ok || start.Name.Local != "iq" {
		return
	}
	from, _, id, typ := stanzaAttrs(start.Attr)
	if typ != "result" && typ != "error" {
		return
	}
	toks, err := readAnswer(start, d)
	if err != nil {
		c.log.Debug().Err(err).Msg("an answer handed on is unreadable")
		return
	}
	c.waiters.take(id, from, toks)
}

// readAnswer reads the rest of an answer, start, from t: its tokens, start
// and end element included, copied to outlive t.
func readAnswer(start xml.StartElement, t xml.TokenReader) ([]xml.Token, error) {
	toks := []xml.Token{start.Copy()}
	for depth := 1; depth > 0; {
		tok, err := t.Token()
		if err != nil {
			return nil, noEOF(err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
		toks = append(toks, xml.CopyToken(tok))
	}
	return toks, nil
}

// answerError is the error an answer of type typ carries (e, its <error/>,
// nil if it has none): nil for a result, a stanza.Error for an error (of
// undefined condition if it names none), and for anything else an error
// naming what was asked.
func answerError(typ string, e *stanza.Error, what string) error {
	switch typ {
	case "result":
		return nil
	case "error":
		if e == nil {
			return stanza.Error{Type: stanza.Cancel, Condition: stanza.UndefinedCondition}
		}
		return *e
	}
	return fmt.Errorf("component: %s answered with type %q", what, typ)
}

// encodeTokens writes toks as XML, leaving out the xmlns attributes the
// decoder kept beside the names' namespaces (the encoder writes its own).
func encodeTokens(toks []xml.Token) ([]byte, error) {
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	for _, tok := range toks {
		if s, ok := tok.(xml.StartElement); ok {
			attr := make([]xml.Attr, 0, len(s.Attr))
			for _, a := range s.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				attr = append(attr, a)
			}
			s.Attr = attr
			tok = s
		}
		if err := enc.EncodeToken(tok); err != nil {
			return nil, err
		}
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/roster/verify"
	"switchboard/store"
	"switchboard/xep/dataform"
)

// nsRegister is XEP-0077: In-Band Registration.
const nsRegister = "jabber:iq:register"

// registerQuery is the jabber:iq:register query, in both directions.
type registerQuery struct {
	XMLName      xml.Name       `xml:"jabber:iq:register query"`
	Instructions string         `xml:"instructions,omitempty"`
	Registered   *struct{}      `xml:"registered,omitempty"`
	Phone        *string        `xml:"phone,omitempty"`
	Remove       *struct{}      `xml:"remove,omitempty"`
	Form         *dataform.Form `xml:"jabber:x:data x,omitempty"`
}

// registerGet returns the registration form: the bound number if any, and a
// code field when a code is waiting.
func (c *Component) registerGet(ctx context.Context, from jid.JID) (*registerQuery, error) {
	if c.cfg.Registrar == nil {
		return nil, errText(stanza.Cancel, stanza.ServiceUnavailable, "This gateway offers no registration.")
	}
	if !c.router.Served(from) {
		return nil, errText(stanza.Cancel, stanza.Forbidden, "Only users of the XMPP domains this gateway serves may register.")
	}
	q := &registerQuery{}
	cur := ""
	if b, err := c.cfg.Registrar.Status(ctx, from); err == nil {
		cur = b.Number
		q.Registered = &struct{}{}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if c.cfg.Registrar.Mode() != "sms" {
		q.Instructions = "This gateway's operator assigns phone numbers; you cannot register one here."
		if cur != "" {
			q.Instructions = fmt.Sprintf("Your number is %s, assigned by the operator.", cur)
		}
		q.Phone = &cur
		return q, nil
	}
	form := &dataform.Form{Type: dataform.TypeForm, Title: "Register a phone number", Fields: []dataform.Field{
		{Var: "FORM_TYPE", Type: dataform.Hidden, Values: []string{nsRegister}},
	}}
	if n, ok := c.cfg.Registrar.Pending(ctx, from); ok {
		q.Instructions = fmt.Sprintf("A code was sent by SMS to %s. Enter it in the code field (or change the number to get a new code).", n)
		form.Fields = append(form.Fields,
			dataform.Text(dataform.TextSingle, "phone", "Phone number", false, n.String()),
			dataform.Text(dataform.TextSingle, "code", "Code from the SMS", false))
	} else {
		q.Instructions = "Enter your phone number in international form (such as +12015550123). A code will be sent to it by SMS; then register again and enter the code."
		form.Fields = append(form.Fields, dataform.Text(dataform.TextSingle, "phone", "Phone number", true, cur))
	}
	form.Instructions = []string{q.Instructions}
	q.Form = form
	phone := cur
	q.Phone = &phone
	return q, nil
}

// registerSet handles a submitted registration: <remove/>, a code, or a
// number to send a code to. A number alone is answered with not-acceptable
// and a text saying a code was sent, since the registration is not complete
// until the code comes back.
func (c *Component) registerSet(ctx context.Context, from jid.JID, q *registerQuery) error {
	if c.cfg.Registrar == nil {
		return errText(stanza.Cancel, stanza.ServiceUnavailable, "This gateway offers no registration.")
	}
	if !c.router.Served(from) {
		return errText(stanza.Cancel, stanza.Forbidden, "Only users of the XMPP domains this gateway serves may register.")
	}
	if q.Remove != nil {
		_, err := c.cfg.Registrar.Unregister(ctx, from)
		return err
	}
	var phone, code string
	if q.Phone != nil {
		phone = *q.Phone
	}
	if q.Form != nil {
		if v, ok := q.Form.Get("phone"); ok {
			phone = v
		}
		code, _ = q.Form.Get("code")
	}
	if code != "" {
		if n, ok := c.cfg.Registrar.Pending(ctx, from); !ok || phone == "" || phone == n.String() {
			_, err := c.cfg.Registrar.Confirm(ctx, from, code)
			return registerError(err)
		}
	}
	if phone == "" {
		return errText(stanza.Modify, stanza.NotAcceptable, "Enter your phone number.")
	}
	n, err := c.cfg.Registrar.Start(ctx, from, phone)
	if err != nil {
		return registerError(err)
	}
	return errText(stanza.Modify, stanza.NotAcceptable,
		fmt.Sprintf("A code was sent by SMS to %s. Register again and enter it in the code field to finish.", n))
}

func registerError(err error) error {
	var ve *verify.Error
	if !errors.As(err, &ve) {
		return err
	}
	switch ve.Kind {
	case verify.BadNumber, verify.NoCode:
		return errText(stanza.Modify, stanza.NotAcceptable, ve.Text)
	case verify.CodeSent:
		return errText(stanza.Modify, stanza.NotAcceptable, ve.Text+" Register again with it in the code field.")
	case verify.RateLimited:
		return errText(stanza.Wait, stanza.ResourceConstraint, ve.Text)
	case verify.Disabled:
		return errText(stanza.Cancel, stanza.NotAllowed, ve.Text)
	case verify.Forbidden:
		return errText(stanza.Cancel, stanza.PolicyViolation, ve.Text)
	default:
		return errText(stanza.Auth, stanza.NotAuthorized, ve.Text)
	}
}

// Notify sends a chat message from the component itself.
func (c *Component) Notify(ctx context.Context, to jid.JID, text string) error {
	return c.SendText(ctx, c.cfg.JID, to, "note-"+newSessionID(), text)
}

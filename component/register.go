package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/roster/number"
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
	// Other holds children of no field above: read only to tell that a
	// <remove/> is not alone.
	Other []struct {
		XMLName xml.Name
	} `xml:",any"`
}

// formRequired tells a client that submitted only legacy fields why they
// cannot register a number. XEP-0077 fixes the legacy fields (§4: a host
// MUST NOT add new ones) and none carries the code from the SMS, so the
// registration needs the data form.
const formRequired = "Registering a phone number needs the registration form (data forms), " +
	"which has a field for the code from the SMS. Use a client that shows the form, " +
	"or the command \"Register a phone number\"."

// registerGet returns the registration form: the bound number if any, and a
// code field when a code is waiting. The legacy <phone> is, after
// <registered/>, the number on record (XEP-0077 §3.1), even while a code
// waits for another, which the form's phone field holds; unregistered, it
// says what that field says. The legacy <instructions> say that the form is
// needed.
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
	var yours string
	if cur != "" {
		yours = fmt.Sprintf("Your number is %s. ", cur)
	}
	phone := cur
	if n, ok := c.cfg.Registrar.Pending(ctx, from); ok {
		phone = n.String()
		form.Instructions = []string{yours + fmt.Sprintf("A code was sent by SMS to %s. Enter it in the code field (or change the number to get a new code).", n)}
		form.Fields = append(form.Fields,
			dataform.Text(dataform.TextSingle, "phone", "Phone number", false, phone),
			dataform.Text(dataform.TextSingle, "code", "Code from the SMS", false))
	} else {
		enter := "Enter your phone number"
		if cur != "" {
			enter = "To change it, enter the new number"
		}
		form.Instructions = []string{yours + enter + " in international form (such as +12015550123). A code will be sent to it by SMS; then register again and enter the code."}
		form.Fields = append(form.Fields, dataform.Text(dataform.TextSingle, "phone", "Phone number", true, phone))
	}
	q.Instructions = yours + formRequired
	q.Form = form
	q.Phone = &phone
	if q.Registered != nil {
		q.Phone = &cur
	}
	return q, nil
}

// registerSet handles a submitted registration: <remove/>, a code, or a
// number to send a code to. A number alone is answered with not-acceptable
// and a text saying a code was sent, since the registration is not complete
// until the code comes back. Legacy fields alone cannot register a number
// (see formRequired).
func (c *Component) registerSet(ctx context.Context, from jid.JID, q *registerQuery) error {
	if c.cfg.Registrar == nil {
		return errText(stanza.Cancel, stanza.ServiceUnavailable, "This gateway offers no registration.")
	}
	if !c.router.Served(from) {
		return errText(stanza.Cancel, stanza.Forbidden, "Only users of the XMPP domains this gateway serves may register.")
	}
	if q.Remove != nil {
		// XEP-0077 §3.2: a <remove/> that is not the query's only child is
		// not processed (a client that meant something else must not lose
		// its number).
		if q.Registered != nil || q.Phone != nil || q.Form != nil || q.Instructions != "" || len(q.Other) > 0 {
			return errText(stanza.Modify, stanza.BadRequest, "To cancel the registration send <remove/> alone; nothing was changed.")
		}
		n, err := c.cfg.Registrar.Unregister(ctx, from)
		if err == nil && n == "" {
			// XEP-0077 §3.2: nothing to cancel.
			return errText(stanza.Auth, stanza.RegistrationRequired, "You have no number registered here; nothing was changed.")
		}
		return err
	}
	if q.Form != nil {
		switch q.Form.Type {
		case dataform.TypeSubmit:
		case dataform.TypeCancel:
			return nil // the user closed the form (XEP-0004 §3.1): nothing to do
		default:
			return errText(stanza.Modify, stanza.BadRequest,
				fmt.Sprintf("The registration form must be sent back with type \"submit\", not %q; nothing was sent.", q.Form.Type))
		}
	}
	if q.Form == nil && c.cfg.Registrar.Mode() == "sms" {
		return errText(stanza.Modify, stanza.NotAcceptable, formRequired)
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
		if n, ok := c.cfg.Registrar.Pending(ctx, from); !ok || phone == "" || sameNumber(phone, n) {
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

// sameNumber reports whether phone, as the user wrote it, is n.
func sameNumber(phone string, n number.E164) bool {
	p, err := number.Parse(phone, n.Region())
	return err == nil && p == n
}

func registerError(err error) error {
	var ve *verify.Error
	if !errors.As(err, &ve) {
		return err
	}
	switch ve.Kind {
	case verify.BadNumber, verify.NoCode, verify.Already:
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
	return c.SendText(ctx, c.cfg.JID, to, "note-"+newSessionID(), text, time.Time{})
}

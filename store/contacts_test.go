package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"switchboard/store"
)

// TestImportContacts imports an address book (with a photo holding every
// byte value), re-imports it changed with replace, and runs into the daily
// lookup limit, on both engines (PostgreSQL takes new rows by COPY).
func TestImportContacts(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.UnixMilli(1_700_000_000_000)
		photo := make([]byte, 256)
		for i := range photo {
			photo[i] = byte(i)
		}
		var book []store.Contact
		for i := range 600 { // more than one batch of rows
			book = append(book, store.Contact{Number: fmt.Sprintf("+1201555%04d", i), Name: fmt.Sprintf("C %d", i)})
		}
		book[7].Photo, book[7].PhotoType = photo, "image/png"
		res, err := s.ImportContacts(ctx, "a@example.com", book, true, 0, now)
		if err != nil || res != (store.ImportResult{Added: 600}) {
			t.Fatalf("first import = %+v, %v", res, err)
		}
		c, err := s.ContactOf(ctx, "a@example.com", book[7].Number)
		if err != nil || c.Name != "C 7" || !bytes.Equal(c.Photo, photo) || c.PhotoType != "image/png" {
			t.Fatalf("contact 7 = %q %q %d bytes, %v", c.Name, c.PhotoType, len(c.Photo), err)
		}
		if c, err := s.ContactOf(ctx, "a@example.com", book[8].Number); err != nil || c.Photo != nil {
			t.Fatalf("contact 8 = %+v, %v; want no photo", c, err)
		}
		// The whole book again: one renamed, one gone, one new.
		book2 := append([]store.Contact(nil), book[1:]...)
		book2[0].Name = "renamed"
		book2 = append(book2, store.Contact{Number: "+12015559999", Name: "new"})
		res, err = s.ImportContacts(ctx, "a@example.com", book2, true, 0, now.Add(time.Minute))
		if err != nil || res != (store.ImportResult{Added: 1, Changed: 1, Removed: 1, Unchanged: 598}) {
			t.Fatalf("second import = %+v, %v", res, err)
		}
		all, err := s.ContactsOf(ctx, "a@example.com")
		if err != nil || len(all) != 600 {
			t.Fatalf("ContactsOf = %d, %v", len(all), err)
		}
		// Another owner over the daily limit: nothing stored.
		_, err = s.ImportContacts(ctx, "b@example.com", book[:10], false, 5, now)
		var le *store.LookupLimitError
		if !errors.As(err, &le) || le.New != 10 || le.Limit != 5 {
			t.Fatalf("over the limit: %v", err)
		}
		if got, err := s.ContactsOf(ctx, "b@example.com"); err != nil || len(got) != 0 {
			t.Fatalf("after a refused import: %d contacts, %v", len(got), err)
		}
	})
}

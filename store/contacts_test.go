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

// TestHoldersAmong: of the owners asked about (more than one chunk of
// them), those whose books hold the number, not deleted; owners not asked
// about are not reported.
func TestHoldersAmong(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.UnixMilli(1_700_000_000_000)
		const num = "+12015550100"
		var asked []string
		for i := range 600 {
			owner := fmt.Sprintf("u%d@example.com", i)
			asked = append(asked, owner)
			if i%100 != 7 {
				continue
			}
			if _, err := s.ImportContacts(ctx, owner, []store.Contact{{Number: num}}, true, 0, now); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.ImportContacts(ctx, "other@example.com", []store.Contact{{Number: num}}, true, 0, now); err != nil {
			t.Fatal(err)
		}
		// u107 removes it: deleted, but still a row until the roster worker is done.
		if _, err := s.ImportContacts(ctx, "u107@example.com", []store.Contact{{Number: "+12015550101"}}, true, 0, now); err != nil {
			t.Fatal(err)
		}
		got, err := s.HoldersAmong(ctx, num, asked)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, i := range []int{7, 207, 307, 407, 507} {
			want[fmt.Sprintf("u%d@example.com", i)] = true
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("HoldersAmong = %v, want %v", got, want)
		}
		if got, err := s.HoldersAmong(ctx, num, nil); err != nil || len(got) != 0 {
			t.Fatalf("HoldersAmong(nil) = %v, %v", got, err)
		}
	})
}

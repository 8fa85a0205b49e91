package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
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
		// counts is an import's added, changed, removed and unchanged, and
		// checks its Book is the book as read back after the commit.
		counts := func(res store.ImportResult, owner string) [4]int {
			t.Helper()
			read, err := s.ContactsOf(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Book, read) {
				t.Fatalf("the import's book (%d contacts) is not the book read back (%d):\n%+v\n%+v", len(res.Book), len(read), res.Book[:min(3, len(res.Book))], read[:min(3, len(read))])
			}
			return [4]int{res.Added, res.Changed, res.Removed, res.Unchanged}
		}
		res, err := s.ImportContacts(ctx, "a@example.com", book, true, 0, now)
		if err != nil || counts(res, "a@example.com") != [4]int{600, 0, 0, 0} {
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
		if err != nil || counts(res, "a@example.com") != [4]int{1, 1, 1, 598} {
			t.Fatalf("second import = %+v, %v", res, err)
		}
		all, err := s.ContactsOf(ctx, "a@example.com")
		if err != nil || len(all) != 600 {
			t.Fatalf("ContactsOf = %d, %v", len(all), err)
		}
		// A merge keeps what it leaves out; contact 7 given again without
		// its photo keeps it, renamed; the one removed comes back.
		merge := []store.Contact{{Number: book[7].Number, Name: "seven"}, book[0], {Number: "+12015559998", Name: "Aa"}}
		res, err = s.ImportContacts(ctx, "a@example.com", merge, false, 0, now.Add(2*time.Minute))
		if err != nil || counts(res, "a@example.com") != [4]int{2, 1, 0, 0} {
			t.Fatalf("merge = %+v, %v", res, err)
		}
		if c, err := s.ContactOf(ctx, "a@example.com", book[7].Number); err != nil || c.Name != "seven" || c.PhotoType != "image/png" {
			t.Fatalf("contact 7 after the merge = %q %q, %v", c.Name, c.PhotoType, err)
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

// TestBindingMarksContacts: a change of binding marks for the roster worker
// the address-book entries of every number whose owner changed: a rebind
// (by an operator or by a verified code) both the new number and the one
// the user had before, a release the number released; and the books of the
// users whose own number changed (whether a contact is mutual depends on
// it): the user's, and the number's previous holder's.
func TestBindingMarksContacts(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const old, fresh, verified, other = "+12015550100", "+12015550101", "+12015550102", "+12015550103"
		for owner, n := range map[string]string{"carol@example.com": old, "dave@example.com": fresh, "erin@example.com": verified, "frank@example.com": other,
			"alice@example.com": other, "zed@example.com": "+12015550109"} {
			if _, err := s.ImportContacts(ctx, owner, []store.Contact{{Number: n, Name: "Alice"}}, true, 0, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Bind(ctx, old, "alice@example.com", "operator"); err != nil {
			t.Fatal(err)
		}
		// dirty takes the contacts marked since the last call, as the
		// roster worker does, and returns their owners.
		dirty := func() []string {
			t.Helper()
			cs, err := s.DirtyContacts(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.ContactsPushed(ctx, cs); err != nil {
				t.Fatal(err)
			}
			var owners []string
			for _, c := range cs {
				owners = append(owners, c.Owner)
			}
			return owners
		}
		dirty()

		if _, err := s.Bind(ctx, fresh, "alice@example.com", "operator"); err != nil {
			t.Fatal(err)
		}
		if got := dirty(); !reflect.DeepEqual(got, []string{"alice@example.com", "carol@example.com", "dave@example.com"}) {
			t.Errorf("after a rebind, dirty contacts of %v; want alice's (her book), carol's (the old number) and dave's (the new)", got)
		}
		if _, err := s.Bind(ctx, verified, "zed@example.com", "operator"); err != nil {
			t.Fatal(err)
		}
		dirty()

		sms := &store.Outbound{SenderJID: "example.com", Dest: verified, Body: "code", Parts: 1, ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.StartVerification(ctx, store.Verification{JID: "alice@example.com", Number: verified, CodeHash: []byte("h"), Salt: []byte("s"),
			ExpiresAt: time.Now().Add(time.Hour)}, sms); err != nil {
			t.Fatal(err)
		}
		ok, _, _, err := s.CheckVerification(ctx, "alice@example.com", time.Now(), 3, func(store.Verification) bool { return true })
		if err != nil || !ok {
			t.Fatalf("CheckVerification = %v, %v", ok, err)
		}
		if got := dirty(); !reflect.DeepEqual(got, []string{"alice@example.com", "dave@example.com", "erin@example.com", "zed@example.com"}) {
			t.Errorf("after a verified rebind, dirty contacts of %v; want alice's, dave's (the old number), erin's (the new) and zed's (its holder before)", got)
		}

		if _, err := s.Release(ctx, verified); err != nil {
			t.Fatal(err)
		}
		if got := dirty(); !reflect.DeepEqual(got, []string{"alice@example.com", "erin@example.com"}) {
			t.Errorf("after a release, dirty contacts of %v; want alice's (its holder) and erin's", got)
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

// TestMarkDuringPush: a contact marked again while the roster worker
// pushes what it read stays dirty for the next push, kept or deleted;
// the rest, in more than one statement's worth, are recorded pushed.
func TestMarkDuringPush(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Now()
		book := make([]store.Contact, 2500)
		for i := range book {
			book[i] = store.Contact{Number: fmt.Sprintf("+1201555%04d", i), Name: fmt.Sprint("c", i)}
		}
		if _, err := s.ImportContacts(ctx, "carol@example.com", book, true, 0, now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ImportContacts(ctx, "dave@example.com", []store.Contact{{Number: "+12015550001", Name: "A"}}, true, 0, now); err != nil {
			t.Fatal(err)
		}
		must(t, s.DropContacts(ctx, "dave@example.com"))
		read, err := s.DirtyContacts(ctx, 5000)
		if err != nil || len(read) != 2501 {
			t.Fatalf("DirtyContacts = %d, %v", len(read), err)
		}
		// While the worker pushes: +12015550001 changes owner (both books
		// hold it), and dave's book is dropped again.
		if _, err := s.Bind(ctx, "+12015550001", "alice@example.com", "operator"); err != nil {
			t.Fatal(err)
		}
		must(t, s.DropContacts(ctx, "dave@example.com"))
		must(t, s.ContactsPushed(ctx, read))

		left, err := s.DirtyContacts(ctx, 5000)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range left {
			got = append(got, fmt.Sprintf("%s %s deleted=%v", c.Owner, c.Number, c.Deleted))
		}
		want := []string{"carol@example.com +12015550001 deleted=false", "dave@example.com +12015550001 deleted=true"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("dirty after the push: %v, want %v", got, want)
		}
		must(t, s.ContactsPushed(ctx, left))
		if left, err := s.DirtyContacts(ctx, 5000); err != nil || len(left) != 0 {
			t.Fatalf("dirty after the second push: %v, %v", left, err)
		}
		if cs, err := s.ContactsOf(ctx, "dave@example.com"); err != nil || len(cs) != 0 {
			t.Fatalf("dave's deleted contact kept: %v, %v", cs, err)
		}
	})
}

// TestItemChanged: a contact's roster item is new until pushed; renamed
// or gone after a push, it is changed (the roster has it); renamed before
// any push, still new.
func TestItemChanged(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner := "a@example.com"
		book := func(names ...string) []store.Contact {
			var cs []store.Contact
			for i, n := range names {
				cs = append(cs, store.Contact{Owner: owner, Number: fmt.Sprintf("+1201555010%d", i+1), Name: n})
			}
			return cs
		}
		if _, err := s.ImportContacts(ctx, owner, book("Bob", "Carol", "Dave"), true, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		dirty, err := s.DirtyContacts(ctx, 10)
		if err != nil || len(dirty) != 3 {
			t.Fatalf("DirtyContacts = %v, %v", dirty, err)
		}
		must(t, s.ContactsPushed(ctx, dirty[:2])) // Dave is never pushed
		// Bob renamed, Carol gone, Dave renamed before his first push.
		if _, err := s.ImportContacts(ctx, owner, []store.Contact{book("Bob (work)")[0], book("", "", "David")[2]}, true, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		dirty, err = s.DirtyContacts(ctx, 10)
		if err != nil || len(dirty) != 3 {
			t.Fatalf("DirtyContacts after the second upload = %v, %v", dirty, err)
		}
		for _, c := range dirty {
			want := c.Number != "+12015550103" // Dave's is still new
			if c.ItemPushed() || c.ItemChanged() != want {
				t.Errorf("%s %q (deleted %v): ItemPushed %v, ItemChanged %v; want false, %v", c.Number, c.Name, c.Deleted, c.ItemPushed(), c.ItemChanged(), want)
			}
		}
	})
}

// TestUserItem: ContactsPushed records which contacts' roster items are
// the user's; the mark stays through renames and pushes that do not carry
// it, until the row goes; a contact re-imported after is the gateway's
// again until the worker finds otherwise. More rows than one statement of
// PostgreSQL's takes (1,000) cross its chunks.
func TestUserItem(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner := "a@example.com"
		var book []store.Contact
		for i := range 1500 {
			book = append(book, store.Contact{Owner: owner, Number: fmt.Sprintf("+1201555%04d", i), Name: fmt.Sprint("C", i)})
		}
		if _, err := s.ImportContacts(ctx, owner, book, true, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		dirty, err := s.DirtyContacts(ctx, 2000)
		if err != nil || len(dirty) != len(book) {
			t.Fatalf("DirtyContacts = %d, %v", len(dirty), err)
		}
		mine := func(c store.Contact) bool { n := c.Number; return n[len(n)-1] == '7' } // every tenth
		for i := range dirty {
			dirty[i].UserItem = mine(dirty[i])
		}
		must(t, s.ContactsPushed(ctx, dirty))
		// Renamed: dirty again, the mark read back.
		for i := range book {
			book[i].Name += " (new)"
		}
		if _, err := s.ImportContacts(ctx, owner, book, true, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		dirty, err = s.DirtyContacts(ctx, 2000)
		if err != nil || len(dirty) != len(book) {
			t.Fatalf("DirtyContacts after renames = %d, %v", len(dirty), err)
		}
		users := 0
		for _, c := range dirty {
			if c.UserItem != mine(c) {
				t.Fatalf("%s: UserItem %v after the rename", c.Number, c.UserItem)
			}
			if c.UserItem {
				users++
			}
		}
		if users != 150 {
			t.Errorf("%d users' items, want 150", users)
		}
		must(t, s.ContactsPushed(ctx, dirty))
		// Forgotten: the rows go; imported again, nobody's yet.
		must(t, s.DropContacts(ctx, owner))
		if dirty, err = s.DirtyContacts(ctx, 2000); err != nil || len(dirty) != len(book) {
			t.Fatalf("DirtyContacts after the drop = %d, %v", len(dirty), err)
		}
		must(t, s.ContactsPushed(ctx, dirty))
		if _, err := s.ImportContacts(ctx, owner, book[:10], true, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		dirty, err = s.DirtyContacts(ctx, 2000)
		if err != nil || len(dirty) != 10 {
			t.Fatalf("DirtyContacts after importing again = %d, %v", len(dirty), err)
		}
		for _, c := range dirty {
			if c.UserItem || c.Deleted {
				t.Errorf("%s imported again: UserItem %v, Deleted %v", c.Number, c.UserItem, c.Deleted)
			}
		}
	})
}

// TestItemDirtyMigration: on upgrade, contacts already pushed count as
// pushed (a registration then sends their presence only), and those still
// waiting are pushed whole; after it, a registration marks presence only.
func TestItemDirtyMigration(t *testing.T) { dsns(t, testItemDirtyMigration) }

func testItemDirtyMigration(t *testing.T, dsn string) {
	ctx := context.Background()
	s := openStore(t, dsn)
	owner := "a@example.com"
	book := []store.Contact{{Owner: owner, Number: "+12015550101", Name: "Pushed"}, {Owner: owner, Number: "+12015550102", Name: "Waiting"}}
	if _, err := s.ImportContacts(ctx, owner, book, true, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	dirty, err := s.DirtyContacts(ctx, 10)
	if err != nil || len(dirty) != 2 {
		t.Fatalf("DirtyContacts = %v, %v", dirty, err)
	}
	must(t, s.ContactsPushed(ctx, dirty[:1]))
	// As before the migration.
	v := store.MigrationVersion("ADD COLUMN item_dirty")
	must(t, store.Exec(s, `DELETE FROM schema_migrations WHERE version = $1`, v))
	must(t, store.Exec(s, `ALTER TABLE contacts DROP COLUMN item_dirty`))
	s.Close()

	s = openStore(t, dsn)
	defer s.Close()
	if _, err := s.Bind(ctx, "+12015550101", "b@example.com", "operator"); err != nil {
		t.Fatal(err)
	}
	dirty, err = s.DirtyContacts(ctx, 10)
	if err != nil || len(dirty) != 2 {
		t.Fatalf("DirtyContacts after the upgrade = %v, %v", dirty, err)
	}
	for _, c := range dirty {
		if want := c.Name == "Pushed"; c.ItemPushed() != want {
			t.Errorf("%s: ItemPushed %v, want %v", c.Name, c.ItemPushed(), want)
		}
	}
}

package main

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLogDurationsHaveUnits: zerolog's Dur writes a bare number of
// milliseconds ("retry_in":644.890135), which reads as seconds as easily;
// durations are logged with Stringer, as Go writes them and as the
// configuration takes them ("645ms", "72h0m0s").
func TestLogDurationsHaveUnits(t *testing.T) {
	dur := regexp.MustCompile(`\.Durs?\(`)
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git", "demo", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			if dur.MatchString(sc.Text()) {
				t.Errorf("%s:%d: a duration logged with Dur (a number with no unit); use Stringer: %s", path, n, strings.TrimSpace(sc.Text()))
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

package memo

import (
	"fmt"
	"sync"
	"testing"
)

// TestGetPut: a value put is got back under its key and no other.
func TestGetPut(t *testing.T) {
	m := New[string, int](10)
	if v, ok := m.Get("a"); ok {
		t.Fatalf("empty map: Get = %d, true", v)
	}
	m.Put("a", 1)
	m.Put("b", 2)
	m.Put("a", 3)
	for k, want := range map[string]int{"a": 3, "b": 2} {
		if v, ok := m.Get(k); !ok || v != want {
			t.Errorf("Get(%q) = %d, %v; want %d", k, v, ok, want)
		}
	}
	if _, ok := m.Get("c"); ok {
		t.Error("Get of a key never put found one")
	}
	if m.Len() != 2 {
		t.Errorf("Len = %d, want 2", m.Len())
	}
	m.Delete("a")
	m.Delete("c")
	if _, ok := m.Get("a"); ok || m.Len() != 1 {
		t.Errorf("after Delete: a found %v, Len %d; want gone, 1", ok, m.Len())
	}
}

// TestBounded: the map never holds more than its bound, and after it
// starts again it still holds the value last put.
func TestBounded(t *testing.T) {
	m := New[int, string](10)
	for i := range 25 {
		m.Put(i, fmt.Sprint(i))
		if m.Len() > 10 {
			t.Fatalf("holds %d after %d puts; bound 10", m.Len(), i+1)
		}
		if v, ok := m.Get(i); !ok || v != fmt.Sprint(i) {
			t.Fatalf("Get(%d) after its Put = %q, %v", i, v, ok)
		}
	}
	if m.Len() != 5 { // cleared at the 11th and the 21st put
		t.Errorf("Len = %d after 25 puts into 10, want 5", m.Len())
	}
}

// TestConcurrent: many goroutines getting and putting (under -race).
func TestConcurrent(t *testing.T) {
	m := New[int, int](16)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := (g + i) % 40
				if v, ok := m.Get(k); ok && v != k*k {
					t.Errorf("Get(%d) = %d, want %d", k, v, k*k)
					return
				}
				m.Put(k, k*k)
			}
		})
	}
	wg.Wait()
	if m.Len() > 16 {
		t.Errorf("holds %d; bound 16", m.Len())
	}
}

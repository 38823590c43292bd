package readbudget

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReaderStopsAtItsBudget(t *testing.T) {
	errOver := errors.New("over budget")
	b := &Reader{R: strings.NewReader("abcdefgh"), Left: 5, Err: errOver}
	got, err := io.ReadAll(b)
	if string(got) != "abcde" || !errors.Is(err, errOver) {
		t.Fatalf("read %q, %v; want %q and the budget's error", got, err, "abcde")
	}
	b.Left = 10 // a new unit: the rest of the source, then its own EOF
	if got, err := io.ReadAll(b); string(got) != "fgh" || err != nil {
		t.Fatalf("after a new budget: %q, %v; want %q, nil", got, err, "fgh")
	}
}

package term

import (
	"bytes"
	"testing"
	"time"

	"github.com/ssekit/sse"
)

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttab":         "plain\ttab",
		"\x1b[2Jclear":       `\x1b[2Jclear`,
		"osc\x1b]0;t\a":      `osc\x1b]0;t\x07`,
		"c1 \u009b31m":       `c1 \u009b31m`,
		"line\nbreak\r":      `line\x0abreak\x0d`,
		"héllo, 世界 \u00a0ok": "héllo, 世界 \u00a0ok",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q; want %q", in, got, want)
		}
	}
	if got := SanitizeText("a\x1b\nb"); got != "a\\x1b\nb" {
		t.Errorf("SanitizeText kept or lost the wrong bytes: %q", got)
	}
}

// TestPrinterEscapesEverything: no mode writes a control character a
// server sent, other than the line ends it adds.
func TestPrinterEscapesEverything(t *testing.T) {
	ev := sse.Event{ID: "i\x1b[1m", Type: "t\x1b]0;x\a", Data: "d\u009b2J"}
	for _, mode := range []Mode{Blocks, Raw, LLM} {
		var b bytes.Buffer
		p := NewPrinter(&b, mode, false)
		at := time.Unix(0, 0)
		p.Connected(at)
		p.Comment("c\x1b[2J", at)
		p.Chunk([]byte("data: \x1b[2J\n\n"), at)
		p.Event(&ev, at)
		p.End()
		for _, r := range b.String() {
			if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r < 0xa0) {
				t.Errorf("mode %d wrote control character %U: %q", mode, r, b.String())
				break
			}
		}
	}
}

package sse_test

import (
	"fmt"
	"strings"

	"github.com/ssekit/sse"
)

// Decoding a stream as the HTML standard says: CRLF, CR and LF line ends,
// comments skipped, data lines joined with "\n", the id kept for the
// events after it, and the unterminated last block not dispatched.
func ExampleNewDecoder() {
	stream := ": a comment\r\n" +
		"id: 7\r\nevent: greeting\r\ndata: hello\r\ndata: world\r\n\r\n" +
		"retry: 2500\rdata: no id field: keeps 7\r\r" +
		"data: the connection was cut here"
	d := sse.NewDecoder(strings.NewReader(stream))
	for ev, err := range d.Events() {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Printf("type=%s id=%s data=%q\n", ev.Type, ev.ID, ev.Data)
	}
	retry, _ := d.Retry()
	fmt.Println("Last-Event-ID to resume with:", d.LastEventID(), "after", retry)
	// Output:
	// type=greeting id=7 data="hello\nworld"
	// type=message id=7 data="no id field: keeps 7"
	// Last-Event-ID to resume with: 7 after 2.5s
}

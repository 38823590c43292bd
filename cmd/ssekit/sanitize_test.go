package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// hostileServer answers every connection with the raw response head and
// body given, byte for byte: a server whose status line and headers carry
// terminal escape sequences, which net/http cannot be made to send.
func hostileServer(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				for { // the request head
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				c.Write([]byte(response))
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/events"
}

// escapes are sequences that recolour, retitle or clear a terminal (CSI,
// OSC with BEL, the 8-bit CSI).
const escapes = "\x1b[2J\x1b]0;pwned\a\u009b31m"

// TestServerTextSanitised: nothing a server sends in its status line,
// headers or error body reaches the terminal as a control character, in
// listen's and lint's output (stdout and stderr).
func TestServerTextSanitised(t *testing.T) {
	// net/http refuses C0 controls in header values but passes the 8-bit
	// CSI (bytes over 0x7f are obs-text); a refused header is quoted in
	// the connection error.
	stream := "HTTP/1.1 200 OK" + escapes + "\r\nContent-Type: text/event-stream\r\nX-Note: a\u009b31m\r\nConnection: close\r\n\r\n" +
		"event: e" + escapes + "\ndata: d" + escapes + "\n\n"
	notFound := "HTTP/1.1 404 Not" + escapes + "Found\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 12\r\n\r\n" + "err\x1b[31mbody"
	badType := "HTTP/1.1 200 OK\r\nContent-Type: text/html\u009b31m\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	badHeader := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Note: a" + escapes + "\r\nConnection: close\r\n\r\n"
	tests := []struct {
		name     string
		response string
		args     []string
		want     string // in stdout or stderr, to show the text was printed (escaped)
	}{
		{"listen status line", stream, []string{"listen", "--no-reconnect"}, `200 OK\x1b[2J`},
		{"listen error body and status", notFound, []string{"listen", "--no-reconnect"}, `err\x1b[31mbody`},
		{"listen content type", badType, []string{"listen", "--no-reconnect"}, `text/html\u009b31m`},
		{"listen refused header", badHeader, []string{"listen", "--no-reconnect"}, `X-Note: a\x1b[2J`},
		{"listen events", stream, []string{"listen", "--no-reconnect", "--color", "never"}, `e\x1b[2J`},
		{"listen --raw", stream, []string{"listen", "--raw", "--no-reconnect"}, `data: d\x1b[2J`},
		{"lint refused header", badHeader, []string{"lint", "--duration", "2s"}, `X-Note: a\x1b[2J`},
		{"lint", stream, []string{"lint", "--duration", "2s"}, `200`},
		{"lint content type", badType, []string{"lint", "--duration", "2s"}, `text/html\u009b31m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := hostileServer(t, tt.response)
			got := run(t, nil, append(tt.args, url)...)
			out := got.stdout + got.stderr
			for _, c := range out {
				if (c < 0x20 && c != '\n' && c != '\t') || (c >= 0x7f && c < 0xa0) {
					t.Fatalf("output has control character %U:\nstdout %q\nstderr %q", c, got.stdout, got.stderr)
				}
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %q:\nstdout %q\nstderr %q", tt.want, got.stdout, got.stderr)
			}
		})
	}
}

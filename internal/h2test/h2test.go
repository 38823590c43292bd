// Package h2test is the raw HTTP/2 client of the HTTP/2 server tests
// (server/h2serve, server): x/net's Framer on a real connection, to send
// what a hostile client sends and see each frame the server answers.
package h2test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Conn is a raw HTTP/2 client connection; Fr writes any frame.
type Conn struct {
	t      testing.TB
	NC     net.Conn
	Fr     *http2.Framer
	Frames chan http2.Frame // after Read
	Done   chan error       // the read side's end, after Read
	enc    *hpack.Encoder
	buf    bytes.Buffer
}

// Dial connects to addr with prior knowledge and sends the preface and a
// SETTINGS frame with settings. It is closed when the test ends.
func Dial(t testing.TB, addr string, settings ...http2.Setting) *Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return Start(t, nc, settings...)
}

// Start is Dial on a connection already made (a TLS one, say).
func Start(t testing.TB, nc net.Conn, settings ...http2.Setting) *Conn {
	t.Helper()
	t.Cleanup(func() { nc.Close() })
	a := &Conn{t: t, NC: nc, Fr: http2.NewFramer(nc, nc), Frames: make(chan http2.Frame, 1<<16), Done: make(chan error, 1)}
	a.Fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	a.enc = hpack.NewEncoder(&a.buf)
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := a.Fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return a
}

// Read starts reading frames into Frames (DATA frames as *Data, SETTINGS
// as *Settings); a full channel drops frames.
func (a *Conn) Read() *Conn {
	go func() {
		for {
			f, err := a.Fr.ReadFrame()
			if err != nil {
				a.Done <- err
				close(a.Frames)
				return
			}
			switch fr := f.(type) { // valid only until the next ReadFrame: copied
			case *http2.DataFrame:
				f = &Data{ID: fr.StreamID, Data: bytes.Clone(fr.Data()), End: fr.StreamEnded()}
			case *http2.SettingsFrame:
				st := &Settings{Ack: fr.IsAck(), Values: map[http2.SettingID]uint32{}}
				fr.ForeachSetting(func(s http2.Setting) error { st.Values[s.ID] = s.Val; return nil })
				f = st
			}
			select {
			case a.Frames <- f:
			default:
			}
		}
	}()
	return a
}

// Block encodes a request's header block; extra are name, value pairs.
func (a *Conn) Block(method, path string, extra ...string) []byte {
	a.buf.Reset()
	fields := []string{":method", method, ":scheme", "http", ":authority", "test", ":path", path}
	fields = append(fields, extra...)
	for i := 0; i+1 < len(fields); i += 2 {
		a.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(a.buf.Bytes())
}

// LimitHeaderTable applies a server's SETTINGS_HEADER_TABLE_SIZE to the
// encoder: its next block begins with the table size update.
func (a *Conn) LimitHeaderTable(size uint32) { a.enc.SetMaxDynamicTableSizeLimit(size) }

// Get opens stream id with a GET for path.
func (a *Conn) Get(id uint32, path string) error {
	return a.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: a.Block("GET", path), EndStream: true, EndHeaders: true})
}

// WaitFor returns the first frame match accepts, failing after 10 s or
// when the connection ends first.
func (a *Conn) WaitFor(what string, match func(http2.Frame) bool) http2.Frame {
	a.t.Helper()
	f, ok := a.wait(what, match)
	if !ok {
		a.t.Fatalf("connection ended before %s", what)
	}
	return f
}

// WaitGoAwayOrEnd returns the code of the GOAWAY the server sent, or -1
// if the connection just ended, within 10 s.
func (a *Conn) WaitGoAwayOrEnd() int {
	a.t.Helper()
	f, ok := a.wait("GOAWAY or the connection's end", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	if !ok {
		return -1
	}
	return int(f.(*http2.GoAwayFrame).ErrCode)
}

// wait returns the first frame match accepts, or false when the
// connection ends first; it fails the test after 10 s.
func (a *Conn) wait(what string, match func(http2.Frame) bool) (http2.Frame, bool) {
	a.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-a.Frames:
			if !ok {
				return nil, false
			}
			if match(f) {
				return f, true
			}
		case <-timeout:
			a.t.Fatalf("no %s within 10 s", what)
		}
	}
}

// Data is a DATA frame copied out of the Framer.
type Data struct {
	http2.FrameHeader
	ID   uint32
	Data []byte
	End  bool
}

// Settings is a SETTINGS frame copied out of the Framer.
type Settings struct {
	http2.FrameHeader
	Ack    bool
	Values map[http2.SettingID]uint32
}

// IsData matches DATA frames.
func IsData(f http2.Frame) bool { _, ok := f.(*Data); return ok }

// IsHeaders matches the response head of stream id.
func IsHeaders(id uint32) func(http2.Frame) bool {
	return func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		return ok && h.StreamID == id
	}
}

// IsReset matches a RST_STREAM on stream id.
func IsReset(id uint32) func(http2.Frame) bool {
	return func(f http2.Frame) bool {
		r, ok := f.(*http2.RSTStreamFrame)
		return ok && r.StreamID == id
	}
}

// Client is net/http's client speaking HTTP/2 only: h2c with prior
// knowledge, or over TLS with tlsConfig when it is not nil.
func Client(t testing.TB, tlsConfig *tls.Config) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), TLSClientConfig: tlsConfig}
	if tlsConfig == nil {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP2(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

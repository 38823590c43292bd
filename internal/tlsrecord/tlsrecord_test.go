package tlsrecord

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/testenv"
)

// echoServer serves TLS on 127.0.0.1, echoing what each connection reads;
// got receives each connection as Handshake returned it.
type echoServer struct {
	addr string
	cert e2etest.TestCert
	got  chan net.Conn
	errs chan error // what ended each connection's Read
}

func startEcho(t *testing.T, mod func(*tls.Config)) *echoServer {
	t.Helper()
	cert := e2etest.NewTestCert(t)
	kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	base := &tls.Config{Certificates: []tls.Certificate{kp}, NextProtos: []string{"h2", "http/1.1"}}
	if mod != nil {
		mod(base)
	}
	cfg := Config(base, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{addr: ln.Addr().String(), cert: cert, got: make(chan net.Conn, 16), errs: make(chan error, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
				c, _, err := Handshake(raw, cfg, nil)
				if err != nil {
					return
				}
				_ = raw.SetDeadline(time.Time{})
				s.got <- c
				buf := make([]byte, 40000)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							err = werr
						}
					}
					if err != nil {
						s.errs <- err
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *echoServer) clientConfig() *tls.Config {
	return &tls.Config{RootCAs: s.cert.Pool, ServerName: "127.0.0.1", NextProtos: []string{"h2"}}
}

func TestGoClientEchoesThroughLeanRecords(t *testing.T) {
	s := startEcho(t, nil)
	for _, suite := range []uint16{0, tls.TLS_AES_128_GCM_SHA256} {
		cc, err := tls.Dial("tcp", s.addr, s.clientConfig())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := (<-s.got).(*Conn); !ok {
			t.Fatal("TLS 1.3 connection not on the lean record layer")
		}
		_ = suite
		for _, n := range []int{1, 100, 16384, 16385, 100000} {
			msg := bytes.Repeat([]byte{byte(n)}, n)
			go cc.Write(msg)
			got := make([]byte, n)
			_ = cc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(cc, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo of %d bytes: %v", n, err)
			}
		}
		cc.Close() // close_notify: the server's Read sees io.EOF
		if err := <-s.errs; err != io.EOF {
			t.Fatalf("after close_notify the server read %v, want EOF", err)
		}
	}
}

func TestTLS12StaysOnCryptoTLS(t *testing.T) {
	s := startEcho(t, nil)
	cfg := s.clientConfig()
	cfg.MaxVersion = tls.VersionTLS12
	cc, err := tls.Dial("tcp", s.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, ok := (<-s.got).(*tls.Conn); !ok {
		t.Fatal("TLS 1.2 connection not on crypto/tls")
	}
	if _, err := cc.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(cc, got); err != nil || string(got) != "hi" {
		t.Fatal(err)
	}
}

func TestSessionResumptionReconnects(t *testing.T) {
	s := startEcho(t, nil)
	cfg := s.clientConfig()
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i := range 2 {
		cc, err := tls.Dial("tcp", s.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		<-s.got
		// The ticket arrives after the handshake, under the application
		// key: the echo shows the server counted it.
		if _, err := cc.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		_ = cc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(cc, got); err != nil || string(got) != "ping" {
			t.Fatalf("connection %d: %v", i, err)
		}
		if resumed := cc.ConnectionState().DidResume; resumed != (i == 1) {
			t.Fatalf("connection %d: DidResume %v", i, resumed)
		}
		cc.Close()
	}
}

// rawClient is a TLS 1.3 client whose records after the handshake the
// test writes itself: its record layer is a Conn with the roles swapped.
type rawClient struct {
	*Conn
	raw    net.Conn
	server *Conn // the server's side
}

type secretLog struct{ client, server []byte }

func (l *secretLog) Write(line []byte) (int, error) {
	k := (*keyLog)(&handshakeConn{})
	k.Write(line)
	if k.clientSecret != nil {
		l.client = k.clientSecret
	}
	if k.serverSecret != nil {
		l.server = k.serverSecret
	}
	return len(line), nil
}

func dialRaw(t *testing.T, s *echoServer) *rawClient {
	t.Helper()
	raw, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	log := &secretLog{}
	cfg := s.clientConfig()
	cfg.KeyLogWriter = log
	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	su, _ := suiteByID(tc.ConnectionState().CipherSuite)
	server := (<-s.got).(*Conn)
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{Conn: newConn(raw, su, log.server, log.client), raw: raw, server: server}
}

// sealRaw is one record with inner type typ and content p, sealed under
// the client's key.
func (c *rawClient) sealRaw(typ byte, p []byte) []byte {
	return c.seal(nil, c.out.aead(c.suite), typ, p)
}

// wantAlert reads until the server's alert or the end.
func (c *rawClient) wantAlert(t *testing.T, desc uint8) {
	t.Helper()
	buf := make([]byte, 1024)
	for {
		_, err := c.Read(buf)
		var ae *alertError
		if errors.As(err, &ae) && !ae.sent {
			if ae.desc != desc {
				t.Fatalf("alert %d, want %d", ae.desc, desc)
			}
			return
		}
		if err != nil {
			t.Fatalf("read %v, want alert %d", err, desc)
		}
	}
}

func noTickets(c *tls.Config) { c.SessionTicketsDisabled = true }

func TestAbuseEndsWithTheRightAlert(t *testing.T) {
	s := startEcho(t, noTickets)
	cases := []struct {
		name  string
		alert uint8
		send  func(c *rawClient) []byte
	}{
		{"bad MAC", alertBadRecordMAC, func(c *rawClient) []byte {
			r := c.sealRaw(recordApplicationData, []byte("hello"))
			r[len(r)-1] ^= 1
			return r
		}},
		{"first record not at sequence 0", alertBadRecordMAC, func(c *rawClient) []byte {
			c.out.seq = 1
			return c.sealRaw(recordApplicationData, []byte("hello"))
		}},
		{"oversize record", alertRecordOverflow, func(c *rawClient) []byte {
			n := maxCiphertext + 1
			return append([]byte{recordApplicationData, 3, 3, byte(n >> 8), byte(n)}, make([]byte, n)...)
		}},
		{"oversize plaintext", alertRecordOverflow, func(c *rawClient) []byte {
			return c.sealRaw(recordApplicationData, make([]byte, maxPlaintext+1))
		}},
		{"plaintext handshake record", alertUnexpectedMessage, func(c *rawClient) []byte {
			return []byte{recordHandshake, 3, 3, 0, 5, handshakeKeyUpdate, 0, 0, 1, 0}
		}},
		{"change_cipher_spec after the handshake", alertUnexpectedMessage, func(c *rawClient) []byte {
			return []byte{20, 3, 3, 0, 1, 1}
		}},
		{"unknown inner type", alertUnexpectedMessage, func(c *rawClient) []byte {
			return c.sealRaw(99, []byte("x"))
		}},
		{"only padding", alertUnexpectedMessage, func(c *rawClient) []byte {
			// inner plaintext all zeros: seal 0-type record
			return c.sealRaw(0, make([]byte, 10))
		}},
		{"handshake message after the handshake", alertUnexpectedMessage, func(c *rawClient) []byte {
			return c.sealRaw(recordHandshake, []byte{4, 0, 0, 1, 0})
		}},
		{"KeyUpdate of a bad value", alertIllegalParameter, func(c *rawClient) []byte {
			return c.sealRaw(recordHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, 7})
		}},
		{"flood of empty records", alertUnexpectedMessage, func(c *rawClient) []byte {
			var b []byte
			for range maxUseless + 1 {
				b = append(b, c.sealRaw(recordApplicationData, nil)...)
			}
			return b
		}},
		{"KeyUpdate flood", alertUnexpectedMessage, func(c *rawClient) []byte {
			var b []byte
			for range keyUpdateBurst + 1 {
				b = append(b, c.sealRaw(recordHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, 0})...)
				c.out.update(c.suite)
				b = append(b, c.sealRaw(recordApplicationData, []byte("x"))...)
			}
			return b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s)
			if _, err := c.raw.Write(tc.send(c)); err != nil {
				t.Fatal(err)
			}
			c.wantAlert(t, tc.alert)
			var ae *alertError
			if err := <-s.errs; !errors.As(err, &ae) || ae.desc != tc.alert {
				t.Fatalf("server's read ended with %v", err)
			}
		})
	}
}

func TestKeyUpdateBothWaysPaddingAndSplitRecords(t *testing.T) {
	s := startEcho(t, noTickets)
	c := dialRaw(t, s)
	var b []byte
	b = append(b, c.sealRaw(recordApplicationData, nil)...) // zero-length: allowed
	// Padding: zeros after the content type.
	b = append(b, c.seal(nil, c.out.aead(c.suite), recordApplicationData, []byte("a"))...)
	b = append(b, c.sealRaw(recordHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, 1})...) // update_requested
	c.out.update(c.suite)
	padded := append([]byte("b"), recordApplicationData, 0, 0, 0)
	n := len(padded) + tagLen
	rec := append([]byte{recordApplicationData, 3, 3, byte(n >> 8), byte(n)}, padded...)
	rec = c.out.aead(c.suite).Seal(rec[:5], c.out.nonce(), rec[5:], rec[:5])
	c.out.seq++
	b = append(b, rec...)
	// Byte by byte.
	for i := range b {
		if _, err := c.raw.Write(b[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, 2)
	// The server's KeyUpdate comes before the echo of "b": the client's
	// record layer follows it.
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ab" {
		t.Fatalf("echo %q, %v", got, err)
	}
	if c.in.seq != 1 {
		t.Fatalf("the server did not update its key (client read seq %d)", c.in.seq)
	}
}

func TestWriteUpdatesItsKeyBeforeTheLimit(t *testing.T) {
	s := startEcho(t, noTickets)
	c := dialRaw(t, s)
	c.server.wmu.Lock()
	c.server.out.seq = updateAfter // the next record would pass the limit
	c.server.wmu.Unlock()
	c.in.seq = updateAfter
	if _, err := c.raw.Write(c.sealRaw(recordApplicationData, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "x" {
		t.Fatalf("echo %q, %v", got, err)
	}
	if c.in.seq != 1 {
		t.Fatalf("the echo came at sequence %d, not first under a new key", c.in.seq-1)
	}
}

// fakeConn is a socket whose peer sent in; writes are dropped.
type fakeConn struct {
	net.Conn
	in *bytes.Reader
}

func (f *fakeConn) Read(p []byte) (int, error)       { return f.in.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error)      { return len(p), nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }
func (f *fakeConn) Close() error                     { return nil }

var fuzzSecret = bytes.Repeat([]byte{7}, 32)

// FuzzRecords feeds the record parser what a client could send after the
// handshake: it must end with an error, never panic or hold more than a
// buffer.
func FuzzRecords(f *testing.F) {
	su, _ := suiteByID(tls.TLS_AES_128_GCM_SHA256)
	peer := newConn(&fakeConn{}, su, fuzzSecret, fuzzSecret)
	a := peer.out.aead(su)
	var seed []byte
	seed = peer.seal(seed, a, recordApplicationData, []byte("hello"))
	seed = peer.seal(seed, a, recordHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, 1})
	f.Add(seed)
	f.Add(peer.seal(nil, a, recordApplicationData, nil))
	f.Add([]byte{23, 3, 3, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newConn(&fakeConn{in: bytes.NewReader(data)}, su, fuzzSecret, fuzzSecret)
		buf := make([]byte, 1000)
		total := 0
		for {
			n, err := c.Read(buf)
			total += n
			if err != nil {
				break
			}
		}
		if total > len(data) {
			t.Fatalf("read %d bytes of plaintext from %d", total, len(data))
		}
		if c.buf != nil {
			t.Fatal("buffer held after the end")
		}
	})
}

// TestOpenSSLKeyUpdates: openssl s_client's "K" (key update, requesting
// the peer's) and "k" commands against the lean record layer.
func TestOpenSSLKeyUpdates(t *testing.T) {
	openssl := testenv.NeedCommand(t, "openssl")
	s := startEcho(t, nil)
	cmd := exec.Command(openssl, "s_client", "-connect", s.addr, "-tls1_3", "-CAfile", s.cert.CertFile)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	<-s.got
	r := bufio.NewReader(out)
	for i, line := range []string{"one", "K", "two", "k", "three"} {
		fmt.Fprintln(in, line)
		if line == "K" || line == "k" {
			// s_client takes a command from a read of stdin that starts
			// with it and drops the rest of that read: pace the lines.
			time.Sleep(300 * time.Millisecond)
			continue
		}
		done := make(chan string, 1)
		go func() {
			// Past the session's description, to the echo.
			for {
				l, err := r.ReadString('\n')
				if strings.TrimSpace(l) == line || err != nil {
					done <- l
					return
				}
			}
		}()
		select {
		case got := <-done:
			if strings.TrimSpace(got) != line {
				t.Fatalf("line %d: echo %q (stderr %s)", i, got, stderr.String())
			}
		case <-time.After(10 * time.Second):
			var serr error
			select {
			case serr = <-s.errs:
			default:
			}
			t.Fatalf("line %d: no echo (server's read: %v; stderr %s)", i, serr, stderr.String())
		}
	}
	in.Close()
}

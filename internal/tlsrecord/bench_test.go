package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// BenchmarkWriteEvent is the write path of one delivered event (a
// 200-byte SSE frame in one Write, as the writer pool does it) over
// loopback TCP, on this record layer and on crypto/tls; the peer reads
// and discards.
func BenchmarkWriteEvent(b *testing.B) {
	event := append([]byte("id: 1234567890\nevent: update\ndata: "), bytes.Repeat([]byte("x"), 160)...)
	event = append(event, "\n\n"...)
	cert := e2etest.NewTestCert(b)
	kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
	if err != nil {
		b.Fatal(err)
	}
	base := &tls.Config{Certificates: []tls.Certificate{kp}}
	for _, lean := range []bool{true, false} {
		name := "crypto-tls"
		if lean {
			name = "lean"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			got := make(chan net.Conn, 1)
			go func() {
				raw, err := ln.Accept()
				if err != nil {
					close(got)
					return
				}
				if lean {
					c, _, err := Handshake(raw, Config(base, nil), nil)
					if err != nil {
						close(got)
						return
					}
					got <- c
					return
				}
				tc := tls.Server(raw, base)
				if tc.Handshake() != nil {
					close(got)
					return
				}
				got <- tc
			}()
			cc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: cert.Pool, ServerName: "127.0.0.1"})
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Close()
			go io.Copy(io.Discard, cc)
			sc, ok := <-got
			if !ok {
				b.Fatal("handshake failed")
			}
			defer sc.Close()
			if _, isLean := sc.(*Conn); isLean != lean {
				b.Fatalf("server conn %T", sc)
			}
			b.SetBytes(int64(len(event)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := sc.Write(event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package natsjs

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestParseAck(t *testing.T) {
	for _, c := range []struct {
		in   string
		seq  uint64
		code jetstream.ErrorCode // of the *jetstream.APIError wanted; 0: none
		bad  bool
	}{
		{in: `{"stream":"S","seq":42}`, seq: 42},
		{in: `{"stream":"S-1_x","seq":18446744073709551615,"domain":"d"}`, seq: 18446744073709551615},
		{in: `{"stream":"S","domain":"d","seq":7}`, seq: 7}, // not the fast path's order
		{in: `{"stream":"S","seq":0}`, bad: true},
		{in: `{"stream":"S","seq":12x}`, bad: true},
		{in: `{"stream":"S"}`, bad: true},
		{in: `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}`, code: 10071},
		{in: `{"stream":"S","seq":1,"error":{"code":503,"err_code":10008,"description":"x"}}`, code: 10008},
		{in: `not json`, bad: true},
		{in: ``, bad: true},
	} {
		seq, err := parseAck([]byte(c.in))
		var apiErr *jetstream.APIError
		switch {
		case c.code != 0:
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != c.code {
				t.Errorf("parseAck(%s) = %d, %v; want API error %d", c.in, seq, err, c.code)
			}
		case c.bad:
			if err == nil {
				t.Errorf("parseAck(%s) = %d; want an error", c.in, seq)
			}
		case err != nil || seq != c.seq:
			t.Errorf("parseAck(%s) = %d, %v; want %d", c.in, seq, err, c.seq)
		}
	}
}

func BenchmarkParseAck(b *testing.B) {
	ack := []byte(`{"stream":"SSEKIT","seq":1234567}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseAck(ack); err != nil {
			b.Fatal(err)
		}
	}
}

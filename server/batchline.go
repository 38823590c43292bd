package server

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// parseBatchLine parses one line of a batch body: a JSON object with the
// fields of batchLine, each of its JSON type or null. It is a scanner for
// that one flat shape, so a line costs one string (the line's copy, whose
// substrings the fields are) instead of encoding/json's reflection and
// per-field allocations; a string with escapes, or not valid UTF-8, is
// decoded by encoding/json, so its meaning is exactly JSON's. Unknown
// fields and a second value on the line are refused.
func parseBatchLine(line []byte) (*batchLine, error) {
	p := lineParser{s: string(line)}
	l := &batchLine{}
	p.space()
	if !p.eat('{') {
		return nil, errors.New("not a JSON object")
	}
	p.space()
	if !p.eat('}') {
		for {
			key, err := p.str()
			if err != nil {
				return nil, err
			}
			p.space()
			if !p.eat(':') {
				return nil, errors.New("expected : after " + strconv.Quote(key))
			}
			p.space()
			if err := p.field(l, key); err != nil {
				return nil, err
			}
			p.space()
			if p.eat(',') {
				p.space()
				continue
			}
			if p.eat('}') {
				break
			}
			return nil, p.unexpected()
		}
	}
	p.space()
	if p.i < len(p.s) {
		return nil, errors.New("more than one JSON value")
	}
	return l, nil
}

type lineParser struct {
	s string
	i int
}

func (p *lineParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *lineParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *lineParser) unexpected() error {
	if p.i >= len(p.s) {
		return errors.New("unexpected end of the line")
	}
	return errors.New("unexpected " + strconv.QuoteRune(rune(p.s[p.i])) + " at offset " + strconv.Itoa(p.i))
}

// null consumes a JSON null.
func (p *lineParser) null() bool {
	if len(p.s)-p.i >= 4 && p.s[p.i:p.i+4] == "null" {
		p.i += 4
		return true
	}
	return false
}

// str reads a JSON string.
func (p *lineParser) str() (string, error) {
	if !p.eat('"') {
		return "", p.unexpected()
	}
	start, plain := p.i, true
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			raw := p.s[start:p.i]
			p.i++
			if plain && utf8.ValidString(raw) {
				return raw, nil
			}
			var v string // escapes, or bytes JSON replaces: its own decoding
			if err := json.Unmarshal([]byte(p.s[start-1:p.i]), &v); err != nil {
				return "", err
			}
			return v, nil
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return "", errors.New("control character in a string at offset " + strconv.Itoa(p.i))
		default:
			p.i++
		}
	}
	return "", errors.New("unterminated string")
}

// field reads the value of key into l.
func (p *lineParser) field(l *batchLine, key string) error {
	var err error
	switch key {
	case "topic":
		l.Topic, err = p.topics()
	case "id":
		l.ID, err = p.optString(key)
	case "type":
		l.Type, err = p.optString(key)
	case "data":
		l.Data, err = p.optString(key)
	case "retry":
		l.Retry, err = p.number(key)
	case "private":
		l.Private, err = p.boolean(key)
	default:
		return errors.New("json: unknown field " + strconv.Quote(key))
	}
	return err
}

func (p *lineParser) optString(key string) (string, error) {
	if p.null() {
		return "", nil
	}
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", errors.New(strconv.Quote(key) + " must be a string")
	}
	return p.str()
}

func (p *lineParser) topics() (batchTopics, error) {
	switch {
	case p.null():
		return nil, nil
	case p.i < len(p.s) && p.s[p.i] == '"':
		t, err := p.str()
		if err != nil {
			return nil, err
		}
		return batchTopics{t}, nil
	case !p.eat('['):
		return nil, errors.New(`"topic" must be a string or an array of strings`)
	}
	var ts batchTopics
	p.space()
	if p.eat(']') {
		return ts, nil
	}
	for {
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, errors.New(`"topic" must be a string or an array of strings`)
		}
		t, err := p.str()
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
		p.space()
		if p.eat(',') {
			p.space()
			continue
		}
		if p.eat(']') {
			return ts, nil
		}
		return nil, p.unexpected()
	}
}

// number reads a JSON number as its text (parseRetry checks its value).
func (p *lineParser) number(key string) (json.Number, error) {
	if p.null() {
		return "", nil
	}
	start := p.i
	p.eat('-')
	if !p.digits() {
		return "", errors.New(strconv.Quote(key) + " must be a number")
	}
	if p.s[start] == '-' && p.i-start > 2 && p.s[start+1] == '0' || p.s[start] == '0' && p.i-start > 1 {
		return "", errors.New(strconv.Quote(key) + " is not a JSON number (leading zero)")
	}
	if p.eat('.') && !p.digits() {
		return "", errors.New(strconv.Quote(key) + " is not a JSON number")
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if !p.digits() {
			return "", errors.New(strconv.Quote(key) + " is not a JSON number")
		}
	}
	return json.Number(p.s[start:p.i]), nil
}

// digits consumes one or more ASCII digits.
func (p *lineParser) digits() bool {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

func (p *lineParser) boolean(key string) (bool, error) {
	switch {
	case len(p.s)-p.i >= 4 && p.s[p.i:p.i+4] == "true":
		p.i += 4
		return true, nil
	case len(p.s)-p.i >= 5 && p.s[p.i:p.i+5] == "false":
		p.i += 5
		return false, nil
	case p.null():
		return false, nil
	}
	return false, errors.New(strconv.Quote(key) + " must be true or false")
}

package hub

// The regular-expression matcher templates were compiled to before the
// linear program: exact in its semantics but quadratic in size, so it is
// kept only as the reference the program is checked against, on templates
// small enough for it.

import (
	"regexp"
	"strconv"
	"strings"
)

// Character classes of RFC 6570 section 1.5, as regexp atoms.
const (
	unreservedAtom = `(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})`
	reservedAtom   = `(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})`
	// refMaxPrefix is the longest prefix modifier enforced; longer ones would
	// make large regexp programs for no practical gain.
	refMaxPrefix = 128
)

// operator is one row of the table in RFC 6570 appendix A.
type refOperator struct {
	first, sep string
	named      bool
	ifemp      string
	reserved   bool
}

// operatorFor returns the operator an expression starts with, and whether
// it has one (otherwise the expression is a simple string expansion).
func refOperatorFor(c byte) (refOperator, bool) {
	switch c {
	case '+':
		return refOperator{sep: ",", reserved: true}, true
	case '#':
		return refOperator{first: "#", sep: ",", reserved: true}, true
	case '.':
		return refOperator{first: ".", sep: "."}, true
	case '/':
		return refOperator{first: "/", sep: "/"}, true
	case ';':
		return refOperator{first: ";", sep: ";", named: true}, true
	case '?':
		return refOperator{first: "?", sep: "&", named: true, ifemp: "="}, true
	case '&':
		return refOperator{first: "&", sep: "&", named: true, ifemp: "="}, true
	}
	return refOperator{sep: ","}, false
}

// refTemplateRegexp returns an anchored regexp matching the expansions of the
// URI template t.
func refTemplateRegexp(t string) (string, error) {
	var b strings.Builder
	b.WriteString(`^`)
	for i := 0; i < len(t); {
		switch t[i] {
		case '{':
			end := strings.IndexByte(t[i:], '}')
			if end < 0 {
				return "", errBadTemplate
			}
			if err := refWriteExpression(&b, t[i+1:i+end]); err != nil {
				return "", err
			}
			i += end + 1
		case '}':
			return "", errBadTemplate
		default:
			j := strings.IndexAny(t[i:], "{}")
			if j < 0 {
				j = len(t) - i
			}
			b.WriteString(regexp.QuoteMeta(t[i : i+j]))
			i += j
		}
	}
	b.WriteString(`$`)
	return b.String(), nil
}

// refWriteExpression writes the regexp for one "{…}" expression: nothing when
// every variable is undefined, else the operator's first string and the
// defined variables joined by its separator.
func refWriteExpression(b *strings.Builder, expr string) error {
	if expr == "" {
		return errBadTemplate
	}
	op, ok := refOperatorFor(expr[0])
	if ok {
		expr = expr[1:]
	} else if strings.IndexByte("=,!@|", expr[0]) >= 0 {
		return errBadTemplate // operators reserved for future extensions
	}
	atom := unreservedAtom
	if op.reserved {
		atom = reservedAtom
	}
	specs := strings.Split(expr, ",")
	alts := make([]string, 0, len(specs))
	anyExplode := false
	for _, s := range specs {
		v, err := parseVarSpec(s)
		if err != nil {
			return err
		}
		value := atom + `*`
		if v.prefix > 0 && v.prefix <= refMaxPrefix {
			value = atom + `{0,` + strconv.Itoa(v.prefix) + `}`
		}
		var x string
		switch {
		case v.explode:
			// A list (name=item for named operators) or a map (key=value),
			// items joined by the separator.
			anyExplode = true
			item := value + `(?:=` + value + `)?`
			x = item + `(?:` + regexp.QuoteMeta(op.sep) + item + `)*`
		case op.named && op.ifemp == "":
			x = regexp.QuoteMeta(v.name) + `(?:=` + value + `)?`
		case op.named:
			x = regexp.QuoteMeta(v.name) + `=` + value
		default:
			x = value
		}
		alts = append(alts, x)
	}
	xu := alts[0]
	if len(alts) > 1 {
		xu = `(?:` + strings.Join(alts, `|`) + `)`
	}
	b.WriteString(`(?:`)
	b.WriteString(regexp.QuoteMeta(op.first))
	b.WriteString(xu)
	if len(alts) > 1 || anyExplode {
		b.WriteString(`(?:`)
		b.WriteString(regexp.QuoteMeta(op.sep))
		b.WriteString(xu)
		if anyExplode {
			b.WriteString(`)*`)
		} else {
			b.WriteString(`){0,` + strconv.Itoa(len(alts)-1) + `}`)
		}
	}
	b.WriteString(`)?`)
	return nil
}

package hub

import (
	"slices"
	"strings"
	"sync"
)

// A template's program: instructions in a slice, each naming its successor
// by index. Consuming instructions read one byte of the topic; the others
// are epsilon moves followed at once. Two counters ride with each thread:
// items, how many items of the current expression it started (bounded for
// an expression without explode), and atoms, how many atoms of the current
// prefix-bounded value it read. Both bounds are upper bounds only, so of two
// threads at one instruction the one with no more items and no more atoms
// does all the other can: a thread is kept only when no kept thread at the
// same instruction dominates it, and there are at most min(variables,
// prefix)+1 such threads per instruction.
type program struct {
	insts   []inst
	targets []int32 // the branch lists of split instructions, concatenated
}

type opcode uint8

const (
	opByte  opcode = iota // consume arg → next
	opHex                 // consume a hex digit → next
	opAtom                // loop over value atoms of set, at most arg when arg > 0; exit → next
	opSplit               // → each of targets[lo:hi]
	opStart               // items = 0 → next
	opItem                // items++ → next
	opMore                // → next when items < arg
	opMatch               // accept at the end of the topic
)

// inst is one instruction. It holds no pointer, so programs cost the
// garbage collector nothing to scan and nothing to copy.
type inst struct {
	op       opcode
	b        byte  // opByte
	reserved bool  // opAtom: reservedSet, else unreservedSet
	arg      int32 // opAtom: prefix bound (0: none); opMore: most items
	next     int32 // successor
	lo, hi   int32 // opSplit: targets[lo:hi]
}

// instSize is what one instruction costs in memory, for Selector.Size.
const instSize = 20

func (p *program) size() int { return len(p.insts)*instSize + len(p.targets)*4 }

// compiler builds a program from a template.
type compiler struct {
	p    program
	vars int
	// Scratch space of expression, reused from one expression to the next.
	specs              []varSpec
	formStarts, toJoin []int32
	// shared[k] is, for the expression numbered gen, the form a variable
	// whose form does not depend on its name already emitted: k is the
	// prefix (0 for none) of a plain variable, maxPrefix+1 for an exploded
	// one. Such variables share one form, so "{+v0,…,vN}" costs one.
	shared [maxPrefix + 2]struct{ gen, pc int32 }
	gen    int32
}

func (c *compiler) emit(i inst) int32 {
	c.p.insts = append(c.p.insts, i)
	return int32(len(c.p.insts) - 1)
}

// here is the index the next instruction will have.
func (c *compiler) here() int32 { return int32(len(c.p.insts)) }

// literal emits instructions consuming s in order, ending at the next one.
func (c *compiler) literal(s string) {
	for i := 0; i < len(s); i++ {
		c.emit(inst{op: opByte, b: s[i], next: c.here() + 1})
	}
}

// compileTemplate compiles the URI template t (without the literal text
// before its first expression, which Selector.Match compares itself) and
// reports how many variables it has. Its cost is linear in len(t).
func compileTemplate(t string) (*program, int, error) {
	var c compiler
	start := strings.IndexByte(t, '{')
	if strings.IndexByte(t[:start], '}') >= 0 {
		return nil, 0, errBadTemplate
	}
	t = t[start:]
	for i := 0; i < len(t); {
		switch t[i] {
		case '{':
			end := strings.IndexByte(t[i:], '}')
			if end < 0 {
				return nil, 0, errBadTemplate
			}
			if err := c.expression(t[i+1 : i+end]); err != nil {
				return nil, 0, err
			}
			i += end + 1
		case '}':
			return nil, 0, errBadTemplate
		default:
			j := strings.IndexAny(t[i:], "{}")
			if j < 0 {
				j = len(t) - i
			}
			c.literal(t[i : i+j])
			i += j
		}
	}
	c.emit(inst{op: opMatch})
	// Kept for as long as the selector is cached: exactly sized and apart
	// from the compiler's scratch space, so the memory held is what Size
	// counts.
	p := &program{insts: slices.Clone(c.p.insts), targets: slices.Clone(c.p.targets)}
	return p, c.vars, nil
}

// value emits a value of the reserved or unreserved set, at most prefix atoms when prefix > 0: an
// atom instruction and the two hex digits of a percent-escape, which go
// back to it. It returns the atom instruction, whose exit is patched by
// the caller through its next.
func (c *compiler) value(reserved bool, prefix int) int32 {
	if prefix > maxPrefix {
		prefix = 0
	}
	a := c.emit(inst{op: opAtom, reserved: reserved, arg: int32(prefix)})
	c.emit(inst{op: opHex, next: a + 2})
	c.emit(inst{op: opHex, next: a})
	return a
}

// expression emits one "{…}" expression: nothing when every variable is
// undefined, else the operator's first string and items joined by its
// separator, each item one of the variables' forms: at most one item per
// variable, or any number when one of them explodes.
//
//	split(skip, body)
//	body:  start; first; item: items++; split(var forms…)
//	form:  … → join
//	join:  split(end, more)
//	more:  items < n; sep → item
//	end:
func (c *compiler) expression(expr string) error {
	if expr == "" {
		return errBadTemplate
	}
	op, ok := operatorFor(expr[0])
	if ok {
		expr = expr[1:]
	} else if strings.IndexByte("=,!@|", expr[0]) >= 0 {
		return errBadTemplate // operators reserved for future extensions
	}
	set := op.reserved
	specs := c.specs[:0]
	anyExplode := false
	for s := range strings.SplitSeq(expr, ",") {
		v, err := parseVarSpec(s)
		if err != nil {
			return err
		}
		anyExplode = anyExplode || v.explode
		specs = append(specs, v)
	}
	c.vars += len(specs)
	c.specs = specs

	// Fixups: instructions whose next is the join or the end, known later.
	toJoin := c.toJoin[:0]
	entry := c.emit(inst{op: opSplit}) // targets: end, body
	c.emit(inst{op: opStart, next: c.here() + 1})
	if op.first != 0 {
		c.literal(string(op.first))
	}
	item := c.emit(inst{op: opItem, next: c.here() + 1})
	forms := c.emit(inst{op: opSplit})
	formStarts := c.formStarts[:0]
	c.gen++
	for _, v := range specs {
		if k := sharedForm(op, v); k >= 0 {
			if c.shared[k].gen == c.gen {
				continue // the same form as an earlier variable's
			}
			c.shared[k].gen, c.shared[k].pc = c.gen, c.here()
		}
		formStarts = append(formStarts, c.here())
		switch {
		case v.explode:
			// A list (name=item for named operators) or a map (key=value),
			// items joined by the separator:
			//	k: value; split(join, eq, sepk); eq: "="; value → split2
			a := c.value(set, 0)
			after := c.emit(inst{op: opSplit}) // join, "=", sep→a
			c.p.insts[a].next = after
			eq := c.emit(inst{op: opByte, b: '=', next: c.here() + 1})
			b := c.value(set, 0)
			after2 := c.emit(inst{op: opSplit}) // join, sep→a
			c.p.insts[b].next = after2
			sep := c.emit(inst{op: opByte, b: op.sep, next: a})
			c.split(after, 0, eq, sep)
			c.split(after2, 0, sep)
			toJoin = append(toJoin, after, after2)
		case op.named && !op.ifemp:
			c.literal(v.name)
			opt := c.emit(inst{op: opSplit}) // join, "=" value
			eq := c.emit(inst{op: opByte, b: '=', next: c.here() + 1})
			a := c.value(set, v.prefix)
			c.split(opt, 0, eq)
			toJoin = append(toJoin, opt, a)
		case op.named:
			c.literal(v.name + "=")
			toJoin = append(toJoin, c.value(set, v.prefix))
		default:
			toJoin = append(toJoin, c.value(set, v.prefix))
		}
	}
	c.split(forms, formStarts...)
	c.formStarts = formStarts
	join := c.emit(inst{op: opSplit}) // end, more
	more := c.here()
	if !anyExplode && len(specs) > 1 {
		c.emit(inst{op: opMore, arg: int32(len(specs)), next: c.here() + 1})
	}
	if !anyExplode && len(specs) == 1 {
		more = -1 // one item at most: no separator
	} else {
		c.emit(inst{op: opByte, b: op.sep, next: item})
	}
	end := c.here()
	if more >= 0 {
		c.split(join, end, more)
	} else {
		c.split(join, end)
	}
	c.split(entry, end, entry+1)
	c.toJoin = toJoin
	for _, pc := range toJoin {
		in := &c.p.insts[pc]
		if in.op == opSplit {
			c.p.targets[in.lo] = join // the slot reserved as 0
		} else {
			in.next = join
		}
	}
	return nil
}

// sharedForm returns the key under which v's form is shared with the
// other variables of its expression that have the same one, or -1 when its
// form holds its name.
func sharedForm(op operator, v varSpec) int {
	switch {
	case v.explode:
		return maxPrefix + 1
	case op.named:
		return -1
	case v.prefix > maxPrefix:
		return 0
	default:
		return v.prefix
	}
}

// split sets the targets of the split instruction at pc.
func (c *compiler) split(pc int32, targets ...int32) {
	in := &c.p.insts[pc]
	in.lo = int32(len(c.p.targets))
	c.p.targets = append(c.p.targets, targets...)
	in.hi = int32(len(c.p.targets))
}

// thread is a position in the program with its counters.
type thread struct {
	pc           int32
	items, atoms int32
}

// queue is the set of threads at one position of the topic: for each
// instruction, the threads no other dominates. Threads are kept in one
// list in insertion order; those of one instruction are chained through
// same, and a thread dominated later is marked dead (pc -1) in place.
type queue struct {
	threads []thread
	same    []int32  // same[i]: the next thread of threads[i]'s instruction, -1 at the end
	mark    []uint32 // mark[pc] == gen: pc has threads, the first at head[pc]
	head    []int32
	gen     uint32
}

func (q *queue) reset(n int) {
	if len(q.mark) < n {
		q.mark = make([]uint32, n)
		q.head = make([]int32, n)
		q.gen = 0
	}
	q.gen++
	if q.gen == 0 { // wrapped: old marks could collide
		clear(q.mark)
		q.gen = 1
	}
	q.threads, q.same = q.threads[:0], q.same[:0]
}

// has reports whether a live thread is at pc.
func (q *queue) has(pc int32) bool {
	if q.mark[pc] != q.gen {
		return false
	}
	for i := q.head[pc]; i >= 0; i = q.same[i] {
		if q.threads[i].pc >= 0 {
			return true
		}
	}
	return false
}

// insert adds t unless a thread at its instruction dominates it, marking
// dead those it dominates; it reports whether t was added.
func (q *queue) insert(t thread) bool {
	n := int32(len(q.threads))
	if q.mark[t.pc] != q.gen {
		q.mark[t.pc] = q.gen
		q.head[t.pc] = n
		q.threads = append(q.threads, t)
		q.same = append(q.same, -1)
		return true
	}
	i := q.head[t.pc]
	for ; ; i = q.same[i] {
		o := &q.threads[i]
		if o.pc >= 0 {
			if o.items <= t.items && o.atoms <= t.atoms {
				return false
			}
			if t.items <= o.items && t.atoms <= o.atoms {
				o.pc = -1
			}
		}
		if q.same[i] < 0 {
			break
		}
	}
	q.same[i] = n
	q.threads = append(q.threads, t)
	q.same = append(q.same, -1)
	return true
}

// machine is the scratch space of one match, pooled.
type machine struct {
	cur, next queue
	stack     []thread
}

var machines = sync.Pool{New: func() any { return new(machine) }}

// add inserts t into q and follows its epsilon moves; it returns how many
// insertions it tried.
func (m *machine) add(p *program, q *queue, t thread) (tried int) {
	m.stack = append(m.stack[:0], t)
	for len(m.stack) > 0 {
		tried++
		t := m.stack[len(m.stack)-1]
		m.stack = m.stack[:len(m.stack)-1]
		if !q.insert(t) {
			continue
		}
		in := &p.insts[t.pc]
		switch in.op {
		case opSplit:
			for _, pc := range p.targets[in.lo:in.hi] {
				m.stack = append(m.stack, thread{pc, t.items, t.atoms})
			}
		case opStart:
			m.stack = append(m.stack, thread{in.next, 0, t.atoms})
		case opItem:
			m.stack = append(m.stack, thread{in.next, t.items + 1, t.atoms})
		case opMore:
			if t.items < in.arg {
				m.stack = append(m.stack, thread{in.next, t.items, t.atoms})
			}
		case opAtom:
			m.stack = append(m.stack, thread{in.next, t.items, 0})
		}
	}
	return tried
}

// match reports whether the program accepts topic whole.
func (p *program) match(topic string) bool {
	ok, _ := p.run(topic)
	return ok
}

// run reports whether the program accepts topic whole, and the work it
// took: how many threads it tried to add, which tests bound against the
// topic's length times the program's size.
func (p *program) run(topic string) (matched bool, work int) {
	m := machines.Get().(*machine)
	defer machines.Put(m)
	n := len(p.insts)
	m.cur.reset(n)
	work += m.add(p, &m.cur, thread{})
	for i := 0; i < len(topic); i++ {
		if len(m.cur.threads) == 0 {
			return false, work
		}
		ch := topic[i]
		m.next.reset(n)
		for _, t := range m.cur.threads {
			if t.pc < 0 {
				continue
			}
			in := &p.insts[t.pc]
			switch in.op {
			case opByte:
				if ch == in.b {
					work += m.add(p, &m.next, thread{in.next, t.items, t.atoms})
				}
			case opHex:
				if isHex(ch) {
					work += m.add(p, &m.next, thread{in.next, t.items, t.atoms})
				}
			case opAtom:
				if in.arg > 0 && t.atoms >= in.arg {
					continue
				}
				atoms := t.atoms
				if in.arg > 0 {
					atoms++
				}
				set := unreservedSet
				if in.reserved {
					set = reservedSet
				}
				if set[ch] {
					work += m.add(p, &m.next, thread{t.pc, t.items, atoms})
				} else if ch == '%' {
					work += m.add(p, &m.next, thread{t.pc + 1, t.items, atoms})
				}
			}
		}
		m.cur, m.next = m.next, m.cur
	}
	return m.cur.has(int32(n - 1)), work // opMatch is the last instruction
}

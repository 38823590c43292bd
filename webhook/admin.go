package webhook

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// ErrInUse is returned by the file functions when a running hub holds
// the outbox.
var ErrInUse = errors.New("webhook: the outbox is in use by a running hub")

// Queue is one endpoint's counts in an outbox file.
type Queue struct {
	Name         string
	Queued, Dead int
}

// openFile opens an outbox file for the operator's commands, not
// creating it.
func openFile(path string, readOnly bool) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: readOnly})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (stop it, or replay from its host)", ErrInUse, path)
	}
	if err != nil {
		return nil, fmt.Errorf("webhook: opening %s: %w", path, err)
	}
	return db, nil
}

// ListFile returns the endpoints' counts in the outbox file at path.
func ListFile(path string) ([]Queue, error) {
	db, err := openFile(path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var out []Queue
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			ep, ok := strings.CutPrefix(string(name), "queue/")
			if !ok {
				return nil
			}
			q := Queue{Name: ep, Queued: b.Stats().KeyN}
			if d := tx.Bucket(deadBucket(ep)); d != nil {
				q.Dead = d.Stats().KeyN
			}
			out = append(out, q)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// ReplayFile moves endpoint name's dead letters back to its queue in the
// outbox file at path (the hub stopped); the hub delivers them when it
// starts. It returns how many.
func ReplayFile(path, name string) (int, error) {
	db, err := openFile(path, false)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	n := 0
	err = db.Update(func(tx *bbolt.Tx) (err error) {
		n, _, err = replayTx(tx, name, 0)
		return err
	})
	return n, err
}

// replayTx moves name's dead letters to the end of its queue, oldest
// first, at most limit of them (0: all), and returns how many it moved
// and how many are left.
func replayTx(tx *bbolt.Tx, name string, limit int) (n, left int, err error) {
	q, d := tx.Bucket(queueBucket(name)), tx.Bucket(deadBucket(name))
	if q == nil || d == nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrNoEndpoint, name)
	}
	c := d.Cursor()
	for k, v := c.First(); k != nil && (limit == 0 || n < limit); k, v = c.First() {
		seq, _ := q.NextSequence()
		if err := q.Put(seqKey(seq), append([]byte(nil), v...)); err != nil {
			return 0, 0, err
		}
		if err := c.Delete(); err != nil {
			return 0, 0, err
		}
		n++
	}
	if k, _ := c.First(); k != nil {
		left = d.Stats().KeyN
	}
	return n, left, nil
}

//go:build unix

package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssekit/sse/hub"
)

// benchParallelism is the appenders per GOMAXPROCS the parallel benchmarks
// run: group commit pays off with many publishers waiting at once.
var benchParallelism = []int{1, 8, 64}

// BenchmarkAppendParallel measures durable appends from many goroutines
// (GOMAXPROCS × p): each waits for its commit, and the committer writes
// every waiting append in one transaction.
func BenchmarkAppendParallel(b *testing.B) {
	data := strings.Repeat("x", 100)
	for _, p := range benchParallelism {
		b.Run(fmt.Sprintf("p=%d", p), func(b *testing.B) {
			s := openStore(b, tempPath(b), Config{})
			var next atomic.Int64
			start := cpuTime()
			b.SetParallelism(p)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					u := &hub.Update{ID: fmt.Sprint("p", next.Add(1)), Topics: []string{"https://example.com/bench"}, Data: data}
					if err := s.Append(ctx, u); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/append")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRawBoltBatch is the baseline the committer was measured
// against: bbolt's own DB.Batch with the same parallelism, doing only the
// two Puts of an append (no retention, no ordering of delivery).
func BenchmarkRawBoltBatch(b *testing.B) {
	val := make([]byte, 150)
	for _, p := range benchParallelism {
		b.Run(fmt.Sprintf("p=%d", p), func(b *testing.B) {
			db, err := bbolt.Open(tempPath(b), 0o600, &bbolt.Options{FreelistType: bbolt.FreelistMapType})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bbolt.Tx) error {
				_, err := tx.CreateBucket(bucketUpdates)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			var next atomic.Uint64
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					err := db.Batch(func(tx *bbolt.Tx) error {
						seq := next.Add(1)
						return tx.Bucket(bucketUpdates).Put(binary.BigEndian.AppendUint64(nil, seq), val)
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkCheckpointTrim measures a checkpoint that drops as many updates
// as it writes (a full history at the default HistorySize): each
// iteration is one batch of checkpointEvery updates, committed and
// checkpointed, its cost reported per update.
func BenchmarkCheckpointTrim(b *testing.B) {
	data := strings.Repeat("x", 100)
	s := openStore(b, tempPath(b), Config{HistorySize: DefaultHistorySize})
	ctx := context.Background()
	next := 0
	batch := func() {
		us := make([]*hub.Update, checkpointEvery)
		for i := range us {
			next++
			us[i] = &hub.Update{ID: fmt.Sprint("c", next), Topics: []string{"https://example.com/bench"}, Data: data}
		}
		if err := s.AppendBatch(ctx, us); err != nil {
			b.Fatal(err)
		}
		if err := s.waitCheckpoint(ctx, s.committed.Load()); err != nil {
			b.Fatal(err)
		}
	}
	for range DefaultHistorySize/checkpointEvery + 1 { // a full history first
		batch()
	}
	start := cpuTime()
	for b.Loop() {
		batch()
	}
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N*checkpointEvery), "cpu-ns/update")
}

package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server"
)

// batchFlags are serve's limits of the batch publishing route
// (docs/publishing.md).
type batchFlags struct {
	maxUpdates int
	maxBytes   int64
}

// register adds the flags, with their defaults, to fs.
func (b *batchFlags) register(fs *flag.FlagSet) {
	b.maxUpdates, b.maxBytes = server.DefaultMaxBatchUpdates, server.DefaultMaxBatchBytes
	fs.Func("max-batch-updates", fmt.Sprintf("updates in one batch publish, and in one group of a streamed one (`N`, 1 to %d; default %d; 413 above)", hub.MaxBatchUpdates, server.DefaultMaxBatchUpdates), func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > hub.MaxBatchUpdates {
			return fmt.Errorf("want a count from 1 to %d", hub.MaxBatchUpdates)
		}
		b.maxUpdates = n
		return nil
	})
	fs.Func("max-batch-bytes", fmt.Sprintf("largest batch publish body, and group of a streamed one, in `BYTES` (default %d; 413 above)", server.DefaultMaxBatchBytes), func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("want a positive number of bytes")
		}
		b.maxBytes = n
		return nil
	})
}

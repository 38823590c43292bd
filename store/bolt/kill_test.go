package bolt

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/hub/hubtest"
)

// killChildEnv names the store file the child process appends to; set, it
// turns TestKillChild into the child.
const killChildEnv = "SSEKIT_BOLT_KILL_CHILD"

// killAppenders is how many goroutines append in the child, so that the
// commits it is killed in carry several appends each.
const killAppenders = 4

// TestMain runs the test binary as the child of TestKill9KeepsAcknowledged
// when the environment says so, and as the tests otherwise.
func TestMain(m *testing.M) {
	if path := os.Getenv(killChildEnv); path != "" {
		killChild(path)
		return
	}
	os.Exit(m.Run())
}

// killChild appends until killed, printing "ACK <id> <seq>" for every
// Append that returned nil.
func killChild(path string) {
	s, err := Open(path, Config{HistorySize: -1})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute) // the parent kills it long before
	for g := range killAppenders {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				u := &hub.Update{ID: fmt.Sprintf("g%d-%d", g, i), Topics: []string{"t"}, Data: strings.Repeat("d", 64)}
				if err := s.Append(context.Background(), u); err != nil {
					mu.Lock()
					fmt.Fprintln(out, "ERR", err)
					out.Flush()
					mu.Unlock()
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "ACK %s %d\n", u.ID, u.Seq)
				out.Flush() // printed means acknowledged: nothing waits in a buffer
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKill9KeepsAcknowledged runs a child process that appends in a loop,
// kills it with SIGKILL mid-stream, and checks that every update the child
// saw acknowledged is in the reopened store, in order, and that Seq
// continues after the highest one.
//
// The kills fall at different points of the log's life: with a short tail
// in the log only, and past checkpointEvery, where a checkpoint (bolt's
// transaction, then the log's truncation) is likely under way.
func TestKill9KeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	for _, n := range []int{500, checkpointEvery + 300} {
		t.Run(fmt.Sprintf("acks=%d", n), func(t *testing.T) { kill9KeepsAcknowledged(t, n) })
	}
}

func kill9KeepsAcknowledged(t *testing.T, wantAcks int) {
	path := tempPath(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	type ack struct {
		id  string
		seq uint64
	}
	var acks []ack
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "ERR "); ok {
			t.Fatalf("child: %s", rest)
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "ACK" {
			continue // the test binary's own output
		}
		seq, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatalf("child printed %q: %v", line, err)
		}
		acks = append(acks, ack{f[1], seq})
		if len(acks) == wantAcks {
			break
		}
	}
	if len(acks) < wantAcks {
		t.Fatalf("child stopped after %d acknowledgements (scan error %v); want %d", len(acks), sc.Err(), wantAcks)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	// Lines the child wrote between our last read and the kill were
	// acknowledged too: read them, so they are checked as well.
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ACK" {
			seq, _ := strconv.ParseUint(f[2], 10, 64)
			acks = append(acks, ack{f[1], seq})
		}
	}

	s := openStore(t, path, Config{HistorySize: -1})
	stored := make(map[string]uint64)
	var last uint64
	_, _, err = hubtest.AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
		if u.Seq != last+1 {
			t.Errorf("stored seq %d follows %d; want no gap", u.Seq, last)
		}
		last = u.Seq
		stored[u.ID] = u.Seq
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	lastAcked := make(map[string]uint64) // per appender, in the order it saw acks
	var maxAcked uint64
	for _, a := range acks {
		seq, ok := stored[a.id]
		if !ok {
			t.Fatalf("acknowledged %s (seq %d) is missing after kill -9; %d of %d acknowledged", a.id, a.seq, len(acks), len(acks))
		}
		if seq != a.seq {
			t.Errorf("%s: stored seq %d; acknowledged as %d", a.id, seq, a.seq)
		}
		g, _, _ := strings.Cut(a.id, "-")
		if seq <= lastAcked[g] {
			t.Errorf("%s: seq %d not after the appender's previous %d", a.id, seq, lastAcked[g])
		}
		lastAcked[g] = seq
		maxAcked = max(maxAcked, seq)
	}
	t.Logf("%d acknowledged before the kill, %d stored, %d of them replayed from the log (highest acknowledged seq %d, highest stored %d)",
		len(acks), len(stored), s.replayed, maxAcked, last)

	u := &hub.Update{ID: "after-kill"}
	if err := s.Append(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if u.Seq != last+1 {
		t.Fatalf("first seq after reopen = %d; want %d", u.Seq, last+1)
	}
}

package hostile_test

// Replay attacks: anonymous subscribers that ask for the whole history and
// never read it. Each used to pin an encoding of the whole history in the
// hub's memory; now a replay is read from the store a page (about 1 MiB)
// at a time as the subscriber drains, so stalled replayers cost a page
// each whatever the history holds.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
)

// replayShapes are two ways to ask for the whole history: "earliest" in
// the query, and an id the hub never had in the Last-Event-ID header (the
// hub then replays everything it retains).
var replayShapes = []struct {
	name   string
	header string // extra request header line, "" for none
	query  string
}{
	{"EarliestInQuery", "", "topic=*&lastEventID=earliest"},
	{"UnknownIDInHeader", "Last-Event-ID: never-published\r\n", "topic=%7B%2Bpath%7D&topic=*"},
}

// seedHistory publishes n updates of size bytes each on topic
// https://example.com/h, eight at a time (bolt commits them in groups),
// and returns their ids in the order they were acknowledged.
func seedHistory(tb testing.TB, h *e2etest.Hub, tok string, n, size int) []string {
	tb.Helper()
	data := strings.Repeat("h", size)
	var mu sync.Mutex
	ids := make([]string, 0, n)
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				id, err := e2etest.Publish(ctx, h.Client, h.URL(), tok, url.Values{
					"topic": {"https://example.com/h"}, "id": {fmt.Sprintf("h-%d", i)}, "data": {data}})
				cancel()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			tb.Fatalf("seeding the history: %v", err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatalf("seeding the history: %v", err)
	default:
	}
	return ids
}

// historyOrder reads the n retained updates of topic https://example.com/h
// with a subscriber that resumes from the start, and returns their ids in
// the hub's order (concurrent publishes are acknowledged in another).
func historyOrder(t *testing.T, h *e2etest.Hub, n int) []string {
	t.Helper()
	s := e2etest.OpenStream(t, h.Client, h.URL(), "topic=https://example.com/h", "earliest", 30*time.Second)
	defer s.Close()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = s.Next(t).ID
	}
	return ids
}

// stalledReplayer opens a subscription that asks for the whole history
// over a raw connection and never reads from it: the hub's writes fill the
// socket buffers, then it has to hold the rest. The connection is closed
// when the test ends.
func stalledReplayer(tb testing.TB, h *e2etest.Hub, header, query string) net.Conn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", h.Addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10) // a small window: the hub holds the rest
	}
	req := "GET /.well-known/mercure?" + query + " HTTP/1.1\r\nHost: " + h.Addr + "\r\n" + header + "\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		tb.Fatal(err)
	}
	// Read the status line only, to know the hub accepted it.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		tb.Fatalf("stalled replayer: status line %q, %v; want 200", line, err)
	}
	return c
}

// TestStalledReplayersDoNotStopOthers: ten subscribers that ask for the
// whole history and never read leave the hub serving others: a publish is
// accepted and reaches a live subscriber, and a client resuming from the
// start of the history gets every retained update once, in order.
func TestStalledReplayersDoNotStopOthers(t *testing.T) {
	for _, shape := range replayShapes {
		t.Run(shape.name, func(t *testing.T) {
			h := startHub(t, "--history-size", "2000")
			tok := e2etest.PublisherToken(t, testSecret)
			seedHistory(t, h, tok, 400, 8<<10) // 3.2 MB: several pages
			ids := historyOrder(t, h, 400)
			for range 10 {
				stalledReplayer(t, h, shape.header, shape.query)
			}
			live := e2etest.OpenStream(t, h.Client, h.URL(), "topic=https://example.com/h", "", 30*time.Second)
			resumed := e2etest.OpenStream(t, h.Client, h.URL(), "topic=https://example.com/h", ids[0], 30*time.Second)
			if status, answer := h.PublishID(tok, "https://example.com/h", "after-attack"); status != http.StatusOK {
				t.Fatalf("publish during the attack: %d %s; want 200", status, answer)
			}
			if ev := live.Next(t); ev.ID != "after-attack" {
				t.Errorf("live subscriber during the attack got %q; want after-attack", ev.ID)
			}
			got := resumed.Until(t, "after-attack")
			want := append(append([]string(nil), ids[1:]...), "after-attack")
			var gotIDs []string
			for _, ev := range got {
				gotIDs = append(gotIDs, ev.ID)
			}
			e2etest.CheckExactly(t, "a subscriber resuming during the attack", gotIDs, want)
		})
	}
}

// rssBytes returns the resident set size of process pid, from
// /proc/pid/status.
func rssBytes(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Skipf("no /proc to read RSS from: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				tb.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc status")
	return 0
}

// BenchmarkStalledReplayRSS reports how much the hub's RSS grows when ten
// subscribers ask for the whole history and never read, against the
// history's size (updates of 8 KiB): flat, about a page each, however long
// the history.
func BenchmarkStalledReplayRSS(b *testing.B) {
	for _, n := range []int{250, 1000, 2500} {
		b.Run(fmt.Sprintf("history=%dx8KiB", n), func(b *testing.B) {
			var growth int64
			for b.Loop() {
				h := ssekit.Start(b, e2etest.HubSpec{Args: []string{"--data-dir", b.TempDir(), "--jwt-key", testSecret,
					"--allow-anonymous", "--history-size", strconv.Itoa(n)}})
				tok := e2etest.PublisherToken(b, testSecret)
				seedHistory(b, h, tok, n, 8<<10)
				pid := h.Cmd.Process.Pid
				time.Sleep(500 * time.Millisecond) // let the publishes' garbage settle
				before := rssBytes(b, pid)
				var conns []net.Conn
				for range 10 {
					conns = append(conns, stalledReplayer(b, h, "", "topic=*&lastEventID=earliest"))
				}
				time.Sleep(time.Second) // the replays fill what they may
				growth = rssBytes(b, pid) - before
				for _, c := range conns {
					c.Close()
				}
			}
			b.ReportMetric(float64(growth)/(1<<20), "MiB-RSS-growth")
			b.ReportMetric(float64(n)*8/1024, "MiB-history")
		})
	}
}

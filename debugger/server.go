package debugger

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssekit/sse"
)

//go:embed static
var static embed.FS

// Defaults of a zero Config.
const (
	DefaultMaxSessions = 16
	// attachTimeout is how long a created session waits for the page to
	// open its stream before it is dropped.
	attachTimeout = 30 * time.Second
	// recordQueue bounds the records waiting for the page: a page that
	// falls behind slows the watched stream down rather than the heap
	// growing.
	recordQueue = 4096
	// maxBatchRecords and maxBatchBytes bound the records sent to the page
	// as one event: enough to carry a burst in a few messages, few enough
	// that parsing one stays well within a frame.
	maxBatchRecords = 512
	maxBatchBytes   = 64 << 10
	// loginCodeTTL is how long a LoginURL works: the time a browser
	// takes to start.
	loginCodeTTL = 2 * time.Minute
	// maxSpecSize bounds a request the page sends.
	maxSpecSize = 16 << 20
)

// TokenHeader carries the Server's token on API calls. The token query
// parameter is accepted too, for a client that cannot set headers (an
// EventSource on the stream).
const TokenHeader = "X-Ssekit-Token"

// Errors of the API.
var (
	errBadToken    = errors.New("debugger: missing or wrong token; open the address ssekit debug printed")
	errNoSession   = errors.New("debugger: no such session")
	errTooMany     = errors.New("debugger: too many sessions")
	errBadSpecJSON = errors.New("debugger: the request is not valid JSON")
	errBadHost     = errors.New("debugger: Host not allowed: open the address ssekit debug printed (or add the name with --allow-host)")
	errCrossOrigin = errors.New("debugger: cross-origin request refused")
)

// Config configures a Server. The zero value works, with no token.
type Config struct {
	// Token, when not empty, must come with every API call (TokenHeader or
	// the token query parameter): without it the Server would be a proxy
	// for anyone who can reach it, or for any web page open in the user's
	// browser.
	Token string
	// HTTPClient makes the watched requests. Nil means a client with no
	// overall timeout.
	HTTPClient *http.Client
	// MaxSessions bounds the sessions at a time. Zero means
	// DefaultMaxSessions.
	MaxSessions int
	// Logger reports sessions starting and ending. Nil means no logging.
	Logger *slog.Logger
	// AllowedHosts are the Host names (without port) the Server answers
	// besides loopback ones (localhost, *.localhost, 127.0.0.0/8, ::1).
	// Any other Host is refused with 403, so that a web page whose name
	// an attacker points at 127.0.0.1 (DNS rebinding) cannot reach it.
	AllowedHosts []string
}

// Server is the debugger's web UI: the page (static files embedded in the
// binary) and the API behind it, which makes the watched requests with the
// sse Client (any method, headers and body, no CORS limits) and streams
// what happens to the page as Records over SSE (each event a JSON array of
// Records, those that were ready together):
//
//	GET    /                            the page
//	POST   /api/sessions                create a session from a RequestSpec → {"id": …}
//	GET    /api/sessions/{id}/stream    the session's Records in batches (text/event-stream); starts it
//	POST   /api/sessions/{id}/restart   drop the connection: the client reconnects (resume)
//	DELETE /api/sessions/{id}           stop the session
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session  // guarded by mu
	codes    map[string]time.Time // guarded by mu; one-time login codes and their expiry
}

// session is one watched stream.
type session struct {
	spec   RequestSpec
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	attached bool             // guarded by mu
	es       *sse.EventSource // guarded by mu; nil until attached
}

// NewToken returns a random token for Config.Token.
func NewToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), sessions: map[string]*session{}, codes: map[string]time.Time{}}
	files, _ := fs.Sub(static, "static")
	fileServer := http.FileServerFS(files)
	s.mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page holds no secret: the token arrives in its URL, which
		// the page then removes from the address bar.
		if code := r.URL.Query().Get("code"); code != "" && r.URL.Path == "/" && s.useCode(code) {
			// A one-time code (the address given to a browser that
			// ssekit opens) becomes the token in the fragment: the token
			// never is on a command line.
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, "/#token="+url.QueryEscape(s.cfg.Token), http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer") // the token is in the URL
		fileServer.ServeHTTP(w, r)
	}))
	s.mux.HandleFunc("POST /api/sessions", s.create)
	s.mux.HandleFunc("GET /api/sessions/{id}/stream", s.stream)
	s.mux.HandleFunc("POST /api/sessions/{id}/restart", s.restart)
	s.mux.HandleFunc("DELETE /api/sessions/{id}", s.stop)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// No other page may frame this one (clickjacking the Send button).
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	if !s.hostAllowed(r.Host) {
		httpError(w, errBadHost, http.StatusForbidden)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		if !sameOrigin(r) {
			httpError(w, errCrossOrigin, http.StatusForbidden)
			return
		}
		if !s.authorized(r) {
			httpError(w, errBadToken, http.StatusUnauthorized)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// hostAllowed reports whether the request's Host names this server: a
// loopback name or address, or one of AllowedHosts.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, h := range s.cfg.AllowedHosts {
		if strings.EqualFold(strings.TrimSuffix(h, "."), host) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether an API call comes from the page itself: a
// browser names the calling page in Origin (on every cross-origin request
// and on same-origin POSTs), and it must be this server's; a call with no
// Origin comes from no web page (curl, a script) and has the token to
// show. Sec-Fetch-Site, when sent, must not say cross-site.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false // "null" (a sandboxed frame, a file:// page) included
	}
	return strings.EqualFold(u.Host, r.Host)
}

// LoginURL returns base (the server's http://host:port) with a fresh
// one-time code that the page exchanges for the token: the address to give
// a browser that ssekit starts, since a child's command line is visible to
// every local user (ps) and the token must not be. The code works once,
// within loginCodeTTL.
func (s *Server) LoginURL(base string) string {
	code := NewToken()
	s.mu.Lock()
	s.codes[code] = time.Now().Add(loginCodeTTL)
	s.mu.Unlock()
	return base + "/?code=" + code
}

// useCode spends a one-time code; it reports whether the code was valid.
func (s *Server) useCode(code string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, expiry := range s.codes {
		if time.Now().After(expiry) {
			delete(s.codes, c)
		}
	}
	for c := range s.codes {
		if subtle.ConstantTimeCompare([]byte(c), []byte(code)) == 1 {
			delete(s.codes, c)
			return true
		}
	}
	return false
}

// authorized checks the token in constant time.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	got := r.Header.Get(TokenHeader)
	if got == "" {
		got = r.URL.Query().Get("token")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1
}

func httpError(w http.ResponseWriter, err error, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// Close stops every session.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.sessions {
		ss.cancel()
		delete(s.sessions, id)
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var spec RequestSpec
	if err := json.NewDecoder(io.LimitReader(r.Body, maxSpecSize)).Decode(&spec); err != nil {
		httpError(w, errBadSpecJSON, http.StatusBadRequest)
		return
	}
	if spec.Method == "" {
		spec.Method = http.MethodGet // a page's empty body field is no body, whatever the method
	}
	if _, err := spec.NewRequest(context.Background()); err != nil {
		httpError(w, err, http.StatusBadRequest)
		return
	}
	id := NewToken()
	ctx, cancel := context.WithCancel(context.Background())
	ss := &session{spec: spec, ctx: ctx, cancel: cancel}
	s.mu.Lock()
	if len(s.sessions) >= s.cfg.MaxSessions {
		s.mu.Unlock()
		cancel()
		httpError(w, errTooMany, http.StatusTooManyRequests)
		return
	}
	s.sessions[id] = ss
	s.mu.Unlock()
	time.AfterFunc(attachTimeout, func() {
		ss.mu.Lock()
		attached := ss.attached
		ss.mu.Unlock()
		if !attached {
			s.drop(id)
		}
	})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"id": id})
}

func (s *Server) session(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

func (s *Server) drop(id string) {
	s.mu.Lock()
	ss := s.sessions[id]
	delete(s.sessions, id)
	s.mu.Unlock()
	if ss != nil {
		ss.cancel()
	}
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	ss := s.session(r.PathValue("id"))
	if ss == nil {
		httpError(w, errNoSession, http.StatusNotFound)
		return
	}
	ss.mu.Lock()
	es := ss.es
	ss.mu.Unlock()
	if es != nil {
		es.Restart()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	if s.session(r.PathValue("id")) == nil {
		httpError(w, errNoSession, http.StatusNotFound)
		return
	}
	s.drop(r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}

// stream runs the session and sends its records to the page. A second
// attach, or one after the end (an EventSource reconnecting), gets 204,
// which stops an EventSource for good.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ss := s.session(id)
	if ss == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ss.mu.Lock()
	if ss.attached {
		ss.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ss.attached = true
	ss.mu.Unlock()
	defer s.drop(id)

	out, err := sse.NewStream(w, r, sse.StreamConfig{Heartbeat: 15 * time.Second})
	if err != nil {
		return
	}
	defer out.Close()
	ctx, cancel := context.WithCancel(ss.ctx)
	defer cancel()
	stop := context.AfterFunc(out.Context(), cancel) // the page went away
	defer stop()

	records := make(chan Record, recordQueue)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(records)
		s.watch(ctx, ss, records)
	})
	defer wg.Wait()
	defer cancel()
	s.cfg.Logger.Info("debugger: session started", "method", ss.spec.Method, "url", ss.spec.URL)

	// Send every record waiting at once, as one event whose data is a
	// JSON array: for a burst, one write and one flush here, and one
	// message and one JSON.parse in the page instead of one per record.
	var (
		buf  bytes.Buffer
		sent int
	)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for rec := range records {
		buf.Reset()
		buf.WriteByte('[')
		for n := 0; ; {
			mark := buf.Len()
			if n > 0 {
				buf.WriteByte(',')
			}
			if err := enc.Encode(&rec); err != nil {
				buf.Truncate(mark) // no Record fails to encode; were one to, it is left out
			} else {
				buf.Truncate(buf.Len() - 1) // the newline Encode adds
				n++
				sent++
			}
			if n == maxBatchRecords || buf.Len() >= maxBatchBytes {
				break
			}
			var ok bool
			select {
			case rec, ok = <-records:
			default:
			}
			if !ok {
				break
			}
		}
		buf.WriteByte(']')
		if err := out.Send(sse.Event{ID: strconv.Itoa(sent), Data: buf.String()}); err != nil {
			cancel()
			for range records { // let watch finish
			}
			return
		}
	}
}

// watch runs the watched stream until it ends, sending records to out.
func (s *Server) watch(ctx context.Context, ss *session, out chan<- Record) {
	tr := NewTracker(nil)
	tr.Raw = ss.spec.Raw
	if ss.spec.LLMRules != nil {
		tr.Assembler().SetRules(ss.spec.LLMRules) // checked by create
	}
	emit := func(r Record) {
		select {
		case out <- r:
		case <-ctx.Done():
		}
	}
	spec := ss.spec.Redacted()
	emit(Record{T: 0, Kind: KindRequest, Request: &spec})

	// A failed first connection ends the stream (Connect), as in listen;
	// emit still delivers the records that say so, on the page's ctx.
	req, err := ss.spec.NewRequest(tr.Trace(ctx))
	if err != nil {
		emit(Record{T: tr.since(), Kind: KindError, Text: err.Error()})
		return
	}
	hc := NDJSONClient(s.httpClient(ss.spec.Insecure)) // the page shows NDJSON lines as events
	if ss.spec.MCP {
		sess, err := MCPInitialize(ctx, hc, &ss.spec)
		if err != nil {
			emit(Record{T: tr.since(), Kind: KindError, Text: strings.TrimPrefix(err.Error(), "debugger: ")})
			return
		}
		defer func(hc *http.Client) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := sess.Close(ctx, hc); err != nil {
				s.cfg.Logger.Info("debugger: ending an MCP session", "url", ss.spec.URL, "err", err)
			}
		}(hc)
		hc = sess.Client(hc)
		// The answer to initialize is the session's first message.
		emit(tr.Event(&sse.Event{Type: "initialize", Data: string(sess.Response)}))
	}
	client := &sse.Client{
		HTTPClient:  hc,
		NoReconnect: ss.spec.NoReconnect,
	}
	tr.Install(client, emit)
	es := Connect(client, req)
	es.EndAnswered(tr.Assembler()) // a complete LLM answer is not asked for again
	tr.Source = es.EventSource
	ss.mu.Lock()
	ss.es = es.EventSource
	ss.mu.Unlock()
	defer es.Close()
	for {
		ev, err := es.Next()
		if err != nil {
			emit(tr.End(err))
			return
		}
		emit(tr.Event(&ev))
	}
}

func (s *Server) httpClient(insecure bool) *http.Client {
	if !insecure {
		return s.cfg.HTTPClient
	}
	return InsecureClient(s.cfg.HTTPClient)
}

// InsecureClient returns a copy of c that does not verify TLS certificates.
func InsecureClient(c *http.Client) *http.Client {
	t, ok := c.Transport.(*http.Transport)
	if c.Transport == nil {
		t, ok = http.DefaultTransport.(*http.Transport)
	}
	if !ok {
		return c
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.InsecureSkipVerify = true
	cc := *c
	cc.Transport = t
	return &cc
}

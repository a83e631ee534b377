// Package siprec is callvault's SIPREC recording server (RFC 7866): it
// takes recording sessions from a telephony platform's recording client
// over SIP (UDP, TCP, TLS), receives the call's RTP, assembles both legs
// on one wall-clock timeline and streams it, sealed, into a spool from
// which the archive stores it when the dialog ends. docs/siprec.md is the
// specification.
package siprec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"callvault/internal/access"
	"callvault/internal/archive"
	"callvault/internal/keys"
	"callvault/internal/rsmeta"
)

// Source is a recording client (SRC) the server accepts: it records as
// the directory principal HSAID for CareUnit. Over UDP and TCP it is known
// by its addresses; over TLS by its client certificate, which must belong
// to HSAID.
type Source struct {
	HSAID     string
	Addresses []netip.Addr
	CareUnit  string
}

// Keyring is what the server needs of the archive keys: the current epoch
// to wrap spool keys to, and identities to reopen spools after a crash.
type Keyring interface {
	Current() keys.Epoch
	Identity(epoch int) (age.Identity, error)
}

// Config wires a Server. Archive, Directory, Keys, SpoolDir and Sources
// are required.
type Config struct {
	Archive   *archive.Service
	Directory *access.Directory
	Keys      Keyring
	SpoolDir  string
	Sources   []Source
	// TLS is the server certificate and the CAs client certificates must
	// chain to, for the TLS listener; nil without one.
	TLS *tls.Config
	// RTPHost is the address media ports bind to and the SDP answer names.
	RTPHost string
	// PortMin and PortMax bound the RTP ports (even ports are used, each
	// stream of a session at base+2k). Default 20000–29999.
	PortMin, PortMax int
	// MediaTimeout ends a session that had neither RTP nor a dialog
	// refresh for this long. Default 30m.
	MediaTimeout time.Duration
	// Window is the jitter window. Default 200ms.
	Window time.Duration
	// SyncInterval between syncs of the spool files. Default 1s.
	SyncInterval time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Server is the SIPREC recording server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	arc     *archive.Service
	metrics *metrics
	ports   *portAllocator

	ua  *sipgo.UserAgent
	sip *sipgo.Server

	mu         sync.Mutex
	sessions   map[string]*session // by dialog key (Call-ID and From tag)
	tlsPeers   map[string]*tlsPeer // by remote address of a TLS connection
	finalizing map[string]bool     // recording IDs whose spool is being stored
	owned      map[string]bool     // recording IDs whose spool a live session holds
	ending     map[string]*session // sessions ended and being stored, by recording ID
	closing    bool                // Close has begun: no new sessions
	wg         sync.WaitGroup      // sessions being finalized
}

// tlsPeer is what a TLS connection's client certificate proved.
type tlsPeer struct {
	principal   *access.Principal // nil if refused
	fingerprint string
	refusal     string // reason the certificate was refused
}

// New creates the server; it does not listen yet.
func New(cfg Config) (*Server, error) {
	if cfg.Archive == nil || cfg.Directory == nil || cfg.Keys == nil || cfg.SpoolDir == "" {
		return nil, errors.New("siprec: config needs Archive, Directory, Keys and SpoolDir")
	}
	if cfg.PortMin == 0 && cfg.PortMax == 0 {
		cfg.PortMin, cfg.PortMax = 20000, 29999
	}
	if cfg.PortMin <= 0 || cfg.PortMax > 65535 || cfg.PortMax-cfg.PortMin < 4 {
		return nil, fmt.Errorf("siprec: RTP port range %d-%d is not usable", cfg.PortMin, cfg.PortMax)
	}
	if cfg.MediaTimeout <= 0 {
		cfg.MediaTimeout = 30 * time.Minute
	}
	if cfg.Window <= 0 {
		cfg.Window = 200 * time.Millisecond
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.RTPHost == "" {
		cfg.RTPHost = "127.0.0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("siprec: spool directory: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, arc: cfg.Archive, ports: newPortAllocator(cfg.RTPHost, cfg.PortMin, cfg.PortMax),
		sessions: map[string]*session{}, tlsPeers: map[string]*tlsPeer{}, finalizing: map[string]bool{}, owned: map[string]bool{},
		ending: map[string]*session{}}
	s.metrics = newMetrics(cfg.Registerer, s.activeCount)
	// sipgo logs unparsable messages whole, with the parties' addresses
	// and SDES keys in them, through its package default logger: silence
	// it (it is the library's one global; callvault logs what it needs).
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("callvault-srs"))
	if err != nil {
		return nil, fmt.Errorf("siprec: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, fmt.Errorf("siprec: %w", err)
	}
	s.ua, s.sip = ua, srv
	srv.OnInvite(s.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {})
	srv.OnBye(s.onBye)
	srv.OnUpdate(s.onUpdate)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		s.respond(tx, req, 200, "OK", nil, s.touch(req))
	})
	srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil, nil)
	})
	srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		s.respond(tx, req, 405, "Method Not Allowed", nil, nil)
	})
	return s, nil
}

// touch marks in-dialog activity (a refresh) of req's session; it returns
// nil, for use as respond's session argument.
func (s *Server) touch(req *sip.Request) *session {
	if ss := s.lookup(req); ss != nil {
		ss.activity()
	}
	return nil
}

// ServeUDP serves SIP on a UDP socket until it is closed.
func (s *Server) ServeUDP(c net.PacketConn) error { return s.sip.ServeUDP(c) }

// ServeTCP serves SIP on a TCP listener until it is closed.
func (s *Server) ServeTCP(l net.Listener) error { return s.sip.ServeTCP(l) }

// ServeTLS serves SIP over TLS on the TCP listener l until it is closed.
// Every connection must present a client certificate; one that does not
// chain to the configured CAs, or whose principal is not a configured
// source, is kept open only to answer its requests with 403 (audited).
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("siprec: no TLS configuration")
	}
	conf := s.cfg.TLS.Clone()
	conf.ClientAuth = tls.RequireAnyClientCert
	return s.sip.ServeTLS(&handshakeListener{Listener: l, conf: conf, srv: s})
}

// Close stops the SIP transport. Sessions in progress are finalized as if
// their dialogs had ended; Close waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	var all []*session
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.end(context.Background(), "shutdown")
	}
	s.wg.Wait()
	return s.ua.Close()
}

// identify finds who sent req: the TLS client certificate's principal, or
// the source configured for the UDP/TCP source address. refusal says why
// not, for the audit log.
func (s *Server) identify(ctx context.Context, req *sip.Request) (*access.Principal, *Source, string, string) {
	src := req.Source()
	if strings.EqualFold(req.Transport(), "TLS") {
		s.mu.Lock()
		peer := s.tlsPeers[src]
		s.mu.Unlock()
		if peer == nil {
			return nil, nil, "no-certificate", ""
		}
		if peer.principal == nil {
			return nil, nil, peer.refusal, peer.fingerprint
		}
		for i := range s.cfg.Sources {
			if s.cfg.Sources[i].HSAID == peer.principal.HSAID {
				return peer.principal, &s.cfg.Sources[i], "", peer.fingerprint
			}
		}
		return nil, nil, "unknown-source", peer.fingerprint
	}
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return nil, nil, "unknown-source", ""
	}
	ip := ap.Addr().Unmap()
	for i := range s.cfg.Sources {
		for _, a := range s.cfg.Sources[i].Addresses {
			if a.Unmap() == ip {
				e, err := s.cfg.Directory.Lookup(ctx, s.cfg.Sources[i].HSAID)
				if err != nil || e.Disabled {
					return nil, nil, "unknown-source", ""
				}
				return &access.Principal{HSAID: e.HSAID, CareProvider: e.CareProvider, CareUnit: e.CareUnit, Roles: e.Roles},
					&s.cfg.Sources[i], "", ""
			}
		}
	}
	return nil, nil, "unknown-source", ""
}

// handshakeListener completes each TLS handshake off the accept loop and
// records what the client certificate proved for the connection's address.
type handshakeListener struct {
	net.Listener
	conf *tls.Config
	srv  *Server
	once sync.Once
	ch   chan net.Conn
	done chan struct{} // closed when the accept loop ends
	sem  chan struct{} // handshakes in progress
}

func (l *handshakeListener) Accept() (net.Conn, error) {
	l.once.Do(func() {
		l.ch = make(chan net.Conn)
		l.done = make(chan struct{})
		l.sem = make(chan struct{}, maxHandshakes)
		go l.acceptLoop()
	})
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// maxHandshakes bounds TLS handshakes in progress, so that idle
// connections cannot hold an unbounded number of goroutines.
const maxHandshakes = 64

// acceptLoop accepts connections until the listener is closed; a
// temporary error (e.g. out of file descriptors) is retried with backoff
// rather than ending TLS service for the life of the process.
func (l *handshakeListener) acceptLoop() {
	defer close(l.done)
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.srv.log.Error("siprec: TLS accept", "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case l.sem <- struct{}{}:
			go func() {
				defer func() { <-l.sem }()
				l.handshake(c)
			}()
		default:
			l.srv.metrics.refused.WithLabelValues("tls-busy").Inc()
			c.Close()
		}
	}
}

func (l *handshakeListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.conf)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		l.srv.log.Warn("siprec: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		l.srv.metrics.refused.WithLabelValues("tls-handshake").Inc()
		c.Close()
		return
	}
	key := c.RemoteAddr().String()
	l.srv.mu.Lock()
	l.srv.tlsPeers[key] = l.srv.verifyPeer(ctx, tc.ConnectionState().PeerCertificates)
	l.srv.mu.Unlock()
	tracked := &trackedConn{Conn: tc, srv: l.srv, key: key}
	select {
	case l.ch <- tracked:
	case <-l.done:
		tracked.Close()
	}
}

// verifyPeer checks a client certificate chain against the configured CAs
// and the directory.
func (s *Server) verifyPeer(ctx context.Context, chain []*x509.Certificate) *tlsPeer {
	if len(chain) == 0 {
		return &tlsPeer{refusal: "no-certificate"}
	}
	p := &tlsPeer{fingerprint: access.Fingerprint(chain[0])}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: s.cfg.TLS.ClientCAs, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		p.refusal = "unknown-certificate"
		return p
	}
	pr, err := s.cfg.Directory.Principal(ctx, chain[0])
	if err != nil {
		p.refusal = "unknown-user"
		return p
	}
	p.principal = pr
	return p
}

// trackedConn forgets its TLS peer record when closed.
type trackedConn struct {
	net.Conn
	srv  *Server
	key  string
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.srv.mu.Lock()
		delete(c.srv.tlsPeers, c.key)
		c.srv.mu.Unlock()
	})
	return c.Conn.Close()
}

// dialogKey identifies a dialog by Call-ID and the SRC's From tag.
func dialogKey(req *sip.Request) string {
	var callID, tag string
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	if f := req.From(); f != nil {
		tag, _ = f.Params.Get("tag")
	}
	return callID + "\x00" + tag
}

func (s *Server) lookup(req *sip.Request) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[dialogKey(req)]
}

func (s *Server) activeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// respond answers req; ss, if not nil, gives the To tag of its dialog.
func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, body []byte, ss *session, headers ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if ss != nil {
		if to := res.To(); to != nil {
			to.Params.Add("tag", ss.toTag)
		}
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	for _, h := range headers {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("siprec: respond", "code", code, "err", err)
	}
}

// caller is the archive caller for a SIP request.
func caller(p *access.Principal, req *sip.Request) archive.Caller {
	addr := req.Source()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	rid := ""
	if h := req.CallID(); h != nil {
		rid = "sip-" + shortHash(h.Value())
	}
	return archive.Caller{Principal: p, ClientAddr: addr, RequestID: rid}
}

// wellFormed reports whether req has what a dialog needs: a Call-ID and
// a From tag. The parser lets requests without them through.
func wellFormed(req *sip.Request) bool {
	if h := req.CallID(); h == nil || h.Value() == "" {
		return false
	}
	f := req.From()
	if f == nil {
		return false
	}
	tag, _ := f.Params.Get("tag")
	return tag != ""
}

// inDialog returns the session of an in-dialog request, after checking
// that it comes from the session's own recording client (sameSource);
// otherwise it answers the request and returns nil.
func (s *Server) inDialog(req *sip.Request, tx sip.ServerTransaction) *session {
	if !wellFormed(req) {
		s.respond(tx, req, 400, "Bad Request", nil, nil)
		return nil
	}
	ss := s.lookup(req)
	if ss == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil, nil)
		return nil
	}
	if !s.sameSource(req, ss) {
		s.metrics.refused.WithLabelValues("in-dialog-source").Inc()
		s.respond(tx, req, 403, "Forbidden", nil, nil)
		return nil
	}
	return ss
}

// sameSource reports whether req comes from the client that began ss: over
// TLS, a connection with the same client certificate; over UDP/TCP, an
// address of the session's source. (The directory is not asked again, so
// a BYE still ends a session whose source was disabled meanwhile.)
func (s *Server) sameSource(req *sip.Request, ss *session) bool {
	if ss.secure {
		if !strings.EqualFold(req.Transport(), "TLS") {
			return false
		}
		s.mu.Lock()
		peer := s.tlsPeers[req.Source()]
		s.mu.Unlock()
		return peer != nil && peer.fingerprint != "" && peer.fingerprint == ss.caller.Principal.CertFingerprint
	}
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return false
	}
	for _, a := range ss.source.Addresses {
		if a.Unmap() == ap.Addr().Unmap() {
			return true
		}
	}
	return false
}

// onInvite handles initial INVITEs (new sessions) and re-INVITEs.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if !wellFormed(req) {
		s.respond(tx, req, 400, "Bad Request", nil, nil)
		return
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if ss := s.inDialog(req, tx); ss != nil {
			ss.modify(req, tx)
		}
		return
	}
	if s.lookup(req) != nil {
		// The same dialog's INVITE again on a new branch: a merged
		// request (RFC 3261 §8.2.2.2), not a second recording.
		s.respond(tx, req, 482, "Loop Detected", nil, nil)
		return
	}
	s.newSession(req, tx)
}

func (s *Server) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if ss := s.inDialog(req, tx); ss != nil {
		ss.modify(req, tx)
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	ss := s.inDialog(req, tx)
	if ss == nil {
		return
	}
	s.respond(tx, req, 200, "OK", nil, ss)
	ss.end(context.Background(), "bye")
}

// isSIPREC reports whether req asks for a recording session: Require:
// siprec, or a Contact with the +sip.src feature tag (RFC 7866 §6.1).
func isSIPREC(req *sip.Request) bool {
	for _, h := range req.GetHeaders("Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), "siprec") {
				return true
			}
		}
	}
	if c := req.Contact(); c != nil && strings.Contains(strings.ToLower(c.Value()), "+sip.src") {
		return true
	}
	return false
}

// splitBody returns the SDP and metadata of req's body.
func splitBody(req *sip.Request) ([]byte, []byte, error) {
	ct := "application/sdp"
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	sdp, meta, err := rsmeta.SplitBody(ct, req.Body())
	if errors.Is(err, rsmeta.ErrNoSDP) && meta != nil {
		// A metadata update without an offer (RFC 7866 §7.1.1.2).
		return nil, meta, nil
	}
	return sdp, meta, err
}

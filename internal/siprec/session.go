package siprec

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/srtp/v3"

	"callvault/internal/archive"
	"callvault/internal/catalog"
	"callvault/internal/recording"
	"callvault/internal/rsmeta"
	"callvault/internal/rtpmix"
)

// Channels of the stored recording.
const (
	chCaller = 0
	chNurse  = 1
)

// session is one recording session (one SIP dialog with an SRC).
type session struct {
	srv       *Server
	id        string // reserved recording ID
	key       string // dialog key
	toTag     string
	caller    archive.Caller
	source    *Source
	started   time.Time
	secure    bool
	allowedIP []netip.Addr // RTP is taken only from these
	sdpID     uint64

	mu           sync.Mutex
	legs         []*leg // by m-line index; nil for a rejected m-line
	meta         spoolMeta
	version      uint64
	lastActivity time.Time
	ended        bool
	pausedLegs   int

	tl       *rtpmix.Timeline
	sp       *spool
	writeErr error // first spool write error; owned by run, then end
	stop     chan struct{}
	drain    sync.WaitGroup
}

// leg is one received media stream.
type leg struct {
	index    int
	label    string
	conn     *net.UDPConn
	port     int
	ourKey   []byte
	srtp     *srtp.Context
	mix      *rtpmix.Leg
	paused   bool
	channels []int
}

func (ss *session) activity() {
	ss.mu.Lock()
	ss.lastActivity = time.Now()
	ss.mu.Unlock()
}

func randomTag() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

var (
	e164Re   = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	callIDRe = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
)

// validCallID reports whether a call ID can be a recording's call_id.
func validCallID(id string) bool { return callIDRe.MatchString(id) }

// newSession handles an initial INVITE.
func (s *Server) newSession(req *sip.Request, tx sip.ServerTransaction) {
	ctx := context.Background()
	cancelled := make(chan struct{})
	var cancelOnce sync.Once
	if !tx.OnCancel(func(*sip.Request) { cancelOnce.Do(func() { close(cancelled) }) }) {
		cancelOnce.Do(func() { close(cancelled) })
	}

	principal, source, refusal, fingerprint := s.identify(ctx, req)
	c := caller(principal, req)
	if principal == nil {
		s.metrics.refused.WithLabelValues(refusal).Inc()
		if err := s.arc.RefuseCapture(ctx, c, refusal, fingerprint); err != nil {
			s.log.Error("siprec: refusal not audited", "err", err)
		}
		s.respond(tx, req, 403, "Forbidden", nil, nil)
		return
	}
	if !isSIPREC(req) {
		s.metrics.refused.WithLabelValues("not-siprec").Inc()
		s.respond(tx, req, 421, "Extension Required", nil, nil, sip.NewHeader("Require", "siprec"))
		return
	}
	sdpBody, metaBody, err := splitBody(req)
	if err == nil && sdpBody == nil {
		err = errors.New("no offer")
	}
	if err != nil {
		s.metrics.refused.WithLabelValues("body").Inc()
		s.respond(tx, req, 400, "Bad Request (body)", nil, nil)
		return
	}
	o, err := parseOffer(sdpBody, strings.EqualFold(req.Transport(), "TLS"))
	if err != nil {
		s.metrics.refused.WithLabelValues("sdp").Inc()
		s.respond(tx, req, 400, "Bad Request (SDP)", nil, nil)
		return
	}
	var meta *rsmeta.Metadata
	if metaBody != nil {
		if meta, err = rsmeta.Parse(metaBody); err != nil {
			// Lenient: a recording without metadata beats none.
			s.log.Warn("siprec: metadata unreadable; recording without it", "err", err)
			s.metrics.metadataErrors.Inc()
			meta = nil
		}
	}
	anyOK := false
	for _, st := range o.Streams {
		anyOK = anyOK || st.OK
	}
	if !anyOK {
		s.metrics.refused.WithLabelValues("media").Inc()
		s.respond(tx, req, 488, "Not Acceptable Here", nil, nil)
		return
	}
	detail := fmt.Sprintf("transport=%s streams=%d", strings.ToLower(req.Transport()), len(o.Streams))
	id, err := s.arc.BeginCapture(ctx, c, principal.CareProvider, source.CareUnit, detail)
	if err != nil {
		var de *archive.DeniedError
		if errors.As(err, &de) {
			s.metrics.refused.WithLabelValues("policy").Inc()
			s.respond(tx, req, 403, "Forbidden", nil, nil)
			return
		}
		s.log.Error("siprec: session not begun", "err", err)
		s.respond(tx, req, 503, "Service Unavailable", nil, nil)
		return
	}
	s.mu.Lock()
	s.owned[id] = true
	s.mu.Unlock()
	ss := &session{srv: s, id: id, key: dialogKey(req), toTag: randomTag(), caller: c, source: source,
		started: time.Now(), secure: strings.EqualFold(req.Transport(), "TLS"), stop: make(chan struct{})}
	binary.Read(rand.Reader, binary.BigEndian, &ss.sdpID)
	ss.sdpID &= 1<<62 - 1
	ss.lastActivity = ss.started
	if o.Addr.IsValid() {
		ss.allowedIP = append(ss.allowedIP, o.Addr.Unmap())
	}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		ss.allowedIP = append(ss.allowedIP, ap.Addr().Unmap())
	}
	fail := func(code int, reason, why string) {
		ss.closeLegs()
		if ss.sp != nil {
			ss.sp.discard()
		}
		s.mu.Lock()
		delete(s.owned, id)
		s.mu.Unlock()
		if err := s.arc.EndCapture(ctx, c, id, catalog.CaptureCancelled, why); err != nil {
			s.log.Error("siprec: cancelled session not recorded", "err", err)
		}
		if code != 0 {
			s.respond(tx, req, code, reason, nil, nil)
		}
	}
	staff, callerNumber, nurse := s.participants(ctx, meta)
	callID := ""
	if meta != nil && len(meta.CallIDs) > 0 {
		callID = meta.CallIDs[0]
	}
	if !validCallID(callID) {
		callID = req.CallID().Value()
	}
	if !validCallID(callID) {
		// Printable ASCII, no spaces, at most 256: what the catalog takes.
		callID = "siprec-" + shortHash(callID)
	}
	if len(staff) == 0 {
		// The agent is not in the directory: the recording is kept, under
		// the care unit, and the log shows the gap.
		s.log.Warn("siprec: agent not known by the directory; staff set to the care unit", "recording", id)
		staff = []string{source.CareUnit}
	}
	ss.meta = spoolMeta{CallID: callID, CallerNumber: callerNumber, Staff: staff, Direction: recording.Inbound}
	ss.tl = rtpmix.New(ss.started, rtpmix.Config{Channels: channels, Window: s.cfg.Window})
	epoch := s.cfg.Keys.Current()
	if ss.sp, err = createSpool(s.cfg.SpoolDir, spoolHeader{RecordingID: id, StartedAt: ss.started, Source: principal.HSAID,
		CareProvider: principal.CareProvider, CareUnit: source.CareUnit}, epoch); err != nil {
		s.log.Error("siprec: spool", "err", err)
		fail(503, "Service Unavailable", "spool")
		return
	}
	if err := ss.sp.saveMeta(&ss.meta); err != nil {
		s.log.Error("siprec: spool metadata", "err", err)
		fail(503, "Service Unavailable", "spool")
		return
	}
	chans := channelsFor(o, meta, nurse)
	answer, err := ss.applyOffer(o, chans)
	if err != nil {
		s.log.Error("siprec: media ports", "err", err)
		fail(503, "Service Unavailable", "ports")
		return
	}
	select {
	case <-cancelled:
		fail(0, "", "cancelled")
		s.metrics.sessions.WithLabelValues("cancelled").Inc()
		return
	default:
	}
	s.mu.Lock()
	_, merged := s.sessions[ss.key]
	closing := s.closing
	if !merged && !closing {
		s.sessions[ss.key] = ss
	}
	s.mu.Unlock()
	if merged || closing {
		fail(503, "Service Unavailable", "not registered")
		return
	}
	ss.drain.Add(1)
	go ss.run()

	hdrs := []sip.Header{sip.NewHeader("Contact", fmt.Sprintf("<sip:srs@%s>;+sip.srs", hostPort(req))),
		sip.NewHeader("Require", "siprec")}
	if se := req.GetHeader("Session-Expires"); se != nil {
		v, _, _ := strings.Cut(se.Value(), ";")
		hdrs = append(hdrs, sip.NewHeader("Session-Expires", strings.TrimSpace(v)+";refresher=uac"))
	}
	s.respond(tx, req, 200, "OK", answer, ss, hdrs...)
	select {
	case <-cancelled:
		// CANCEL won the race with the answer: nothing was recorded.
		ss.mu.Lock()
		already := ss.ended
		ss.ended = true
		ss.mu.Unlock()
		if already {
			return // Close got there first and stores it
		}
		s.mu.Lock()
		if s.sessions[ss.key] == ss {
			delete(s.sessions, ss.key)
		}
		s.mu.Unlock()
		close(ss.stop)
		ss.drain.Wait()
		fail(0, "", "cancelled")
		s.metrics.sessions.WithLabelValues("cancelled").Inc()
		return
	default:
	}
	s.metrics.sessions.WithLabelValues("accepted").Inc()
	s.log.Info("siprec: session started", "recording", id, "streams", len(o.Streams), "transport", strings.ToLower(req.Transport()))
}

// hostPort is the address the request reached, for our Contact.
func hostPort(req *sip.Request) string {
	if d := req.Destination(); d != "" {
		return d
	}
	return "callvault.invalid"
}

// applyOffer opens legs for newly offered streams, updates pause state of
// existing ones and returns the SDP answer. chans gives channels for new
// legs.
func (ss *session) applyOffer(o *offer, chans map[int][]int) ([]byte, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return nil, errEnded
	}
	for len(ss.legs) < len(o.Streams) {
		ss.legs = append(ss.legs, nil)
	}
	var fresh []int
	for _, st := range o.Streams {
		if st.OK && ss.legs[st.Index] == nil {
			fresh = append(fresh, st.Index)
		}
	}
	if len(fresh) > 0 {
		conns, base, err := ss.srv.ports.allocate(len(fresh))
		if err != nil {
			return nil, err
		}
		for k, idx := range fresh {
			st := o.Streams[idx]
			ch := chans[idx]
			if len(ch) == 0 {
				ch = []int{idx % 2}
			}
			l := &leg{index: idx, label: st.Label, conn: conns[k], port: base + 2*k, channels: ch, mix: ss.tl.Leg(ch...)}
			if st.Crypto != nil && st.Proto == "RTP/SAVP" {
				ctx, err := srtp.CreateContext(st.Crypto.Key[:16], st.Crypto.Key[16:], st.Crypto.Profile)
				if err != nil {
					return nil, fmt.Errorf("srtp: %w", err)
				}
				l.srtp = ctx
				l.ourKey = make([]byte, 30)
				rand.Read(l.ourKey)
			}
			ss.legs[idx] = l
			go ss.receive(l)
		}
	}
	ans := make([]answerStream, len(o.Streams))
	for _, st := range o.Streams {
		l := ss.legs[st.Index]
		if l == nil || !st.OK {
			if l != nil {
				ss.setPaused(l, true)
			}
			continue
		}
		ss.setPaused(l, st.Direction == "inactive" || st.Direction == "recvonly")
		ans[st.Index] = answerStream{Port: l.port, Paused: l.paused, Key: l.ourKey}
	}
	ss.version++
	return buildAnswer(o, ss.srv.cfg.RTPHost, ss.sdpID, ss.version, ans), nil
}

// setPaused changes a leg's pause state; ss.mu is held.
func (ss *session) setPaused(l *leg, paused bool) {
	if l.paused == paused {
		return
	}
	l.paused = paused
	l.mix.SetPaused(paused)
	if paused {
		ss.pausedLegs++
	} else {
		ss.pausedLegs--
	}
}

// modify handles a re-INVITE or UPDATE: a refresh, a stream change, a
// pause or resume, or new metadata.
func (ss *session) modify(req *sip.Request, tx sip.ServerTransaction) {
	s := ss.srv
	ss.mu.Lock()
	ended := ss.ended
	ss.lastActivity = time.Now()
	ss.mu.Unlock()
	if ended {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil, nil)
		return
	}
	if len(req.Body()) == 0 {
		// A session refresh without an offer: answer with the current state.
		s.respond(tx, req, 200, "OK", nil, ss)
		return
	}
	sdpBody, metaBody, err := splitBody(req)
	if err != nil {
		s.respond(tx, req, 400, "Bad Request (body)", nil, ss)
		return
	}
	ctx := context.Background()
	if metaBody != nil {
		if m, err := rsmeta.Parse(metaBody); err == nil {
			staff, number, _ := s.participants(ctx, m)
			ss.mu.Lock()
			changed := false
			for _, id := range staff {
				if !containsStr(ss.meta.Staff, id) {
					if len(ss.meta.Staff) == 1 && ss.meta.Staff[0] == ss.source.CareUnit {
						ss.meta.Staff = nil
					}
					ss.meta.Staff, changed = append(ss.meta.Staff, id), true
				}
			}
			if number != "" && ss.meta.CallerNumber == "" {
				ss.meta.CallerNumber, changed = number, true
			}
			if changed && !ss.ended {
				ss.saveMeta(&ss.meta)
			}
			ss.mu.Unlock()
		} else {
			s.metrics.metadataErrors.Inc()
		}
	}
	if sdpBody == nil {
		s.respond(tx, req, 200, "OK", nil, ss)
		return
	}
	o, err := parseOffer(sdpBody, ss.secure)
	if err != nil {
		s.respond(tx, req, 488, "Not Acceptable Here", nil, ss)
		return
	}
	ss.mu.Lock()
	before := ss.pausedLegs
	ss.mu.Unlock()
	// New streams take channels by order after the existing ones.
	chans := map[int][]int{}
	for _, st := range o.Streams {
		chans[st.Index] = []int{st.Index % 2}
	}
	answer, err := ss.applyOffer(o, chans)
	if errors.Is(err, errEnded) {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil, nil)
		return
	}
	if err != nil {
		s.respond(tx, req, 503, "Service Unavailable", nil, ss)
		return
	}
	ss.mu.Lock()
	after, total := ss.pausedLegs, 0
	for _, l := range ss.legs {
		if l != nil {
			total++
		}
	}
	ss.mu.Unlock()
	s.respond(tx, req, 200, "OK", answer, ss)
	if (before == 0) != (after == 0) || before != after {
		action := "capture.pause"
		if after < before {
			action = "capture.resume"
		}
		s.metrics.pauses.WithLabelValues(strings.TrimPrefix(action, "capture.")).Inc()
		if err := s.arc.AuditCapture(ctx, ss.caller, action, ss.id, fmt.Sprintf("paused_streams=%d/%d", after, total)); err != nil {
			s.log.Error("siprec: pause not audited", "recording", ss.id, "err", err)
		}
	}
}

var errEnded = errors.New("siprec: session has ended")

// saveMeta writes the session's sealed metadata file; callers hold ss.mu,
// so writes are ordered and none follows the final one.
func (ss *session) saveMeta(m *spoolMeta) {
	if err := ss.sp.saveMeta(m); err != nil {
		ss.srv.log.Error("siprec: spool metadata not saved", "recording", ss.id, "err", err)
	}
}

// end finishes the session once: the timeline is closed at now, the spool
// finished, and the recording stored in the background.
func (ss *session) end(ctx context.Context, why string) {
	s := ss.srv
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	ss.ended = true
	s.wg.Add(1) // before anyone can see ended, so Close waits for this
	ss.mu.Unlock()
	s.mu.Lock()
	if s.sessions[ss.key] == ss {
		delete(s.sessions, ss.key)
	}
	s.ending[ss.id] = ss
	s.mu.Unlock()
	close(ss.stop)
	ss.drain.Wait()
	end := time.Now()
	ss.closeLegs()
	buf := ss.tl.Close(nil, end)
	werr := ss.writeErr
	if werr == nil {
		werr = ss.sp.write(buf)
	}
	s.metrics.sealed.Add(float64(len(buf)))
	st := ss.stats(end)
	for _, x := range st.Streams {
		s.metrics.packets.WithLabelValues("lost").Add(float64(x.Lost))
		s.metrics.packets.WithLabelValues("late").Add(float64(x.Late))
		s.metrics.packets.WithLabelValues("duplicate").Add(float64(x.Duplicates))
	}
	statsJSON, _ := json.Marshal(st)
	ss.mu.Lock()
	ss.meta.Stats = statsJSON
	ss.saveMeta(&ss.meta)
	ss.mu.Unlock()
	if werr == nil {
		werr = ss.sp.finish()
	} else {
		ss.sp.f.Close()
	}
	if werr != nil {
		s.log.Error("siprec: spool not finished; stored as incomplete", "recording", ss.id, "err", werr)
	}
	s.log.Info("siprec: session ended", "recording", ss.id, "why", why, "frames", ss.sp.frames)
	go func() {
		defer s.wg.Done()
		// A call cut short by serve stopping went on without us: what we
		// hold is incomplete, and says so.
		s.finalize(ctx, ss.sp.dir, ss.id, ss.caller, werr != nil || why == "shutdown")
		s.mu.Lock()
		delete(s.ending, ss.id)
		delete(s.owned, ss.id)
		s.mu.Unlock()
	}()
}

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
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"callvault/internal/access"
	"callvault/internal/archive"
	"callvault/internal/catalog"
	"callvault/internal/recording"
	"callvault/internal/rsmeta"
	"callvault/internal/rtpmix"
	"callvault/internal/seal"
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

// numberOf extracts an E.164 number from a sip:/tel: AOR, or "".
func numberOf(aor string) string {
	n := access.NormalizeAOR(aor)
	_, rest, ok := strings.Cut(n, ":")
	if !ok {
		return ""
	}
	user, _, _ := strings.Cut(rest, "@")
	user = strings.NewReplacer("-", "", ".", "", " ", "").Replace(user)
	if e164Re.MatchString(user) {
		return user
	}
	return ""
}

// staffOf maps an AOR to a staff HSA-ID: through the directory, or an AOR
// whose user part is an HSA-ID of a registered principal.
func (s *Server) staffOf(ctx context.Context, aor string) string {
	if id, err := s.cfg.Directory.ByAOR(ctx, aor); err == nil {
		return id
	}
	n := access.NormalizeAOR(aor)
	if _, rest, ok := strings.Cut(n, ":"); ok {
		user, _, _ := strings.Cut(rest, "@")
		if recording.ValidHSAID(user) {
			if e, err := s.cfg.Directory.Lookup(ctx, user); err == nil && !e.Disabled {
				return e.HSAID
			}
		}
	}
	return ""
}

// participants reads the call's parties out of the metadata: the staff
// (participants whose AOR maps to a principal), the caller's number, and
// which participants' streams go to the nurse channel.
func (s *Server) participants(ctx context.Context, m *rsmeta.Metadata) (staff []string, callerNumber string, nurse map[string]bool) {
	nurse = map[string]bool{}
	if m == nil {
		return nil, "", nurse
	}
	for _, p := range m.Participants {
		isStaff := false
		for _, aor := range p.AORs {
			if id := s.staffOf(ctx, aor); id != "" {
				isStaff = true
				if !containsStr(staff, id) {
					staff = append(staff, id)
				}
			}
		}
		if isStaff {
			nurse[p.ID] = true
			continue
		}
		if callerNumber == "" {
			for _, aor := range p.AORs {
				if n := numberOf(aor); n != "" {
					callerNumber = n
					break
				}
			}
		}
	}
	return staff, callerNumber, nurse
}

func containsStr(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// channelsFor decides the output channel(s) of each taken m-line: by the
// metadata's participant-stream association where it tells, otherwise by
// order (first stream caller, second nurse); a single stream (both
// parties mixed) goes on both channels.
func channelsFor(o *offer, m *rsmeta.Metadata, nurse map[string]bool) map[int][]int {
	taken := []*offerStream{}
	for _, st := range o.Streams {
		if st.OK {
			taken = append(taken, st)
		}
	}
	out := map[int][]int{}
	if len(taken) == 1 {
		out[taken[0].Index] = []int{chCaller, chNurse}
		return out
	}
	for i, st := range taken {
		ch := i % 2
		if m != nil && st.Label != "" {
			if ms := m.StreamByLabel(st.Label); ms != nil {
				if p := m.Sender(ms.ID); p != nil {
					if nurse[p.ID] {
						ch = chNurse
					} else if len(nurse) > 0 {
						ch = chCaller
					}
				}
			}
		}
		out[st.Index] = []int{ch}
	}
	return out
}

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

// receive reads one leg's RTP until the session ends.
func (ss *session) receive(l *leg) {
	buf := make([]byte, 2048)
	var dec []byte
	m := ss.srv.metrics
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		now := time.Now()
		if !ss.fromSource(from.Addr()) {
			m.packets.WithLabelValues("foreign").Inc()
			continue
		}
		pkt := buf[:n]
		var p rtp.Packet
		if l.srtp != nil {
			var h rtp.Header
			if dec, err = l.srtp.DecryptRTP(dec[:0], pkt, &h); err != nil {
				m.packets.WithLabelValues("invalid").Inc()
				continue
			}
			pkt = dec
		}
		if err := p.Unmarshal(pkt); err != nil {
			m.packets.WithLabelValues("invalid").Inc()
			continue
		}
		m.packets.WithLabelValues("received").Inc()
		ss.mu.Lock()
		ss.lastActivity = now
		ss.mu.Unlock()
		l.mix.Push(rtpmix.Packet{Arrival: now, SSRC: p.SSRC, Seq: p.SequenceNumber, Timestamp: p.Timestamp,
			PayloadType: p.PayloadType, Payload: p.Payload})
	}
}

func (ss *session) fromSource(a netip.Addr) bool {
	a = a.Unmap()
	for _, ok := range ss.allowedIP {
		if ok == a {
			return true
		}
	}
	return false
}

// run drains the timeline into the spool, syncs it, and ends the session
// after MediaTimeout without activity.
func (ss *session) run() {
	defer ss.drain.Done()
	s := ss.srv
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastSync := time.Now()
	var buf []byte
	for {
		select {
		case <-ss.stop:
			return
		case now := <-tick.C:
			buf = ss.tl.Drain(buf[:0], now)
			if ss.writeErr == nil {
				if ss.writeErr = ss.sp.write(buf); ss.writeErr != nil {
					// The writer's error is sticky: what is on disk is kept
					// and stored as incomplete when the session ends.
					s.log.Error("ALERT: siprec: spool write failed; the rest of the call is not recorded", "recording", ss.id, "err", ss.writeErr)
				}
			}
			s.metrics.sealed.Add(float64(len(buf)))
			if now.Sub(lastSync) >= s.cfg.SyncInterval {
				if err := ss.sp.sync(); err != nil {
					s.log.Error("siprec: spool sync", "recording", ss.id, "err", err)
				}
				lastSync = now
			}
			ss.mu.Lock()
			idle := now.Sub(ss.lastActivity)
			ss.mu.Unlock()
			if idle > s.cfg.MediaTimeout {
				go ss.end(context.Background(), "media-timeout")
				return
			}
		}
	}
}

func (ss *session) closeLegs() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, l := range ss.legs {
		if l != nil {
			l.conn.Close()
		}
	}
	if len(ss.legs) > 0 {
		ss.srv.ports.release(ss.legs)
	}
}

// stats is the capture's account of the session's media.
func (ss *session) stats(end time.Time) captureStats {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	cs := captureStats{DurationMS: end.Sub(ss.started).Milliseconds()}
	for _, l := range ss.legs {
		if l == nil {
			continue
		}
		cs.Streams = append(cs.Streams, streamStats{Label: l.label, Channels: l.channels, Stats: l.mix.Stats()})
	}
	return cs
}

// captureStats is stored with the recording (catalog capture_stats).
type captureStats struct {
	DurationMS int64         `json:"duration_ms"`
	Incomplete bool          `json:"incomplete,omitempty"`
	Streams    []streamStats `json:"streams"`
}

type streamStats struct {
	Label    string `json:"label,omitempty"`
	Channels []int  `json:"channels"`
	rtpmix.Stats
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

// finalize stores the spool of recording id through the archive and
// removes it. A storage failure leaves the spool for the retry loop.
func (s *Server) finalize(ctx context.Context, dir, id string, c archive.Caller, incomplete bool) error {
	s.mu.Lock()
	if s.finalizing[id] {
		s.mu.Unlock()
		return errBusy
	}
	s.finalizing[id] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.finalizing, id)
		s.mu.Unlock()
	}()
	path := spoolPath(dir, id)
	live, _, err := s.arc.Known(ctx, id)
	if err != nil {
		return err
	}
	if live {
		// Stored before a crash took the spool's removal with it.
		_ = s.arc.EndCapture(ctx, c, id, catalog.CaptureStored, "")
		removeSpool(dir, id)
		return nil
	}
	o, off, err := openSpool(path, s.cfg.Keys.Identity)
	if err != nil {
		if permanent(err) {
			s.quarantine(ctx, c, id, err)
		}
		return err
	}
	meta := o.meta
	if meta == nil {
		meta = &spoolMeta{CallID: "siprec-" + id, Staff: []string{o.header.CareUnit}, Direction: recording.Inbound}
		incomplete = true
	}
	enc := wavEncoding(codecsOf(meta.Stats))
	// EndedAt follows from the audio itself: the timeline starts at
	// StartedAt, one frame per 1/8000 s; the WAV header needs the length
	// too. So count first (decrypting in memory), then stream.
	cnt, finished, err := o.pcm(io.Discard, off)
	if err != nil {
		if permanent(err) {
			s.quarantine(ctx, c, id, err)
		}
		return err
	}
	incomplete = incomplete || !finished
	total := max(cnt, minFrames)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := o.wavStream(pw, off, enc, cnt)
		pw.CloseWithError(err)
		done <- err
	}()
	dur := time.Duration(total) * time.Second / rtpmix.SampleRate
	md := recording.Metadata{CallID: meta.CallID, CareProvider: o.header.CareProvider, CareUnit: o.header.CareUnit,
		Patient: meta.Patient, CallerNumber: meta.CallerNumber, Staff: meta.Staff,
		StartedAt: o.header.StartedAt, EndedAt: o.header.StartedAt.Add(dur), Direction: meta.Direction}
	_, err = s.arc.IngestCapture(ctx, c, md, pr, archive.Capture{ID: id, Incomplete: incomplete, Stats: string(meta.Stats)})
	pr.CloseWithError(errors.New("ingest finished"))
	<-done
	if err != nil {
		if errors.Is(err, archive.ErrStorage) || errors.Is(err, archive.ErrAuditUnavailable) {
			s.log.Error("siprec: recording not stored yet; retried", "recording", id, "err", err)
			return err
		}
		// Refused (the source lost its role) or invalid: IngestCapture has
		// ended the session as failed; retrying would only repeat that.
		s.quarantine(ctx, c, id, err)
		return err
	}
	removeSpool(dir, id)
	outcome := "stored"
	if incomplete {
		outcome = "incomplete"
	}
	s.metrics.sessions.WithLabelValues(outcome).Inc()
	return nil
}

var errBusy = errors.New("siprec: spool is being finalized")

// permanent reports whether a spool error will not go away by retrying:
// not a spool file, or sealed under a key no identity opens.
func permanent(err error) bool {
	return errors.Is(err, errSpoolFormat) || errors.Is(err, seal.ErrAuth) || errors.Is(err, seal.ErrFormat)
}

// quarantine moves a spool that can never be stored out of the way, and
// ends its session as failed: an alert, and a finding in the log review.
func (s *Server) quarantine(ctx context.Context, c archive.Caller, id string, cause error) {
	dir := filepath.Join(s.cfg.SpoolDir, "quarantine")
	if err := os.MkdirAll(dir, 0o700); err == nil {
		os.Rename(spoolPath(s.cfg.SpoolDir, id), spoolPath(dir, id))
		os.Rename(metaPath(s.cfg.SpoolDir, id), metaPath(dir, id))
	}
	s.log.Error("siprec: spool cannot be stored; moved to quarantine", "recording", id, "err", cause)
	if err := s.arc.EndCapture(ctx, c, id, catalog.CaptureFailed, "spool-unreadable"); err != nil && !errors.Is(err, catalog.ErrCaptureState) {
		s.log.Error("siprec: failed session not recorded", "recording", id, "err", err)
	}
}

// Recover stores every spool left by a previous run (the recorder stopped
// mid-call) as an incomplete recording, playable up to the last synced
// chunk, and returns how many it stored. Call it before serving.
func (s *Server) Recover(ctx context.Context) (int, error) {
	n, err := s.retry(ctx, true)
	if err != nil {
		return n, err
	}
	// A session begun but killed before its spool existed has nothing to
	// store: it ends as failed, visibly, rather than active forever.
	active, err := s.arc.CaptureActive(ctx, 10000)
	if err != nil {
		return n, err
	}
	for _, cs := range active {
		if _, err := os.Stat(spoolPath(s.cfg.SpoolDir, cs.RecordingID)); err == nil {
			continue // kept for a retry
		}
		c := archive.Caller{ClientAddr: "local", RequestID: "siprec-recover"}
		if err := s.arc.EndCapture(ctx, c, cs.RecordingID, catalog.CaptureFailed, "no-spool"); err != nil && !errors.Is(err, catalog.ErrCaptureState) {
			return n, err
		}
	}
	return n, nil
}

// RunRetry retries, every interval until ctx ends, the spools of ended
// sessions whose recording could not be stored yet (both sites or the
// audit log unavailable).
func (s *Server) RunRetry(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.retry(ctx, false); err != nil {
				s.log.Error("siprec: retry", "err", err)
			}
		}
	}
}

// retry finalizes every spool not held by a live session.
func (s *Server) retry(ctx context.Context, startup bool) (int, error) {
	ids, err := listSpools(s.cfg.SpoolDir)
	if err != nil {
		return 0, fmt.Errorf("siprec: spool: %w", err)
	}
	active := map[string]bool{}
	s.mu.Lock()
	for id := range s.owned {
		active[id] = true
	}
	s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if active[id] {
			continue
		}
		h, _, err := readSpoolHeader(spoolPath(s.cfg.SpoolDir, id))
		if err != nil {
			s.log.Error("siprec: not a spool file; left in place", "file", id+spoolSuffix)
			continue
		}
		c := archive.Caller{ClientAddr: "local", RequestID: "siprec-recover"}
		e, err := s.cfg.Directory.Lookup(ctx, h.Source)
		if err != nil && !errors.Is(err, access.ErrNotFound) {
			s.log.Error("siprec: directory unavailable; spool kept for the next attempt", "recording", id, "err", err)
			continue
		}
		if e != nil {
			c.Principal = &access.Principal{HSAID: e.HSAID, CareProvider: e.CareProvider, CareUnit: e.CareUnit, Roles: e.Roles}
		}
		if err := s.finalize(ctx, s.cfg.SpoolDir, id, c, startup); err != nil {
			if !errors.Is(err, errBusy) {
				s.log.Error("siprec: spool kept for the next attempt", "recording", id, "err", err)
			}
			continue
		}
		n++
	}
	return n, nil
}

// LinkActive links patient (12 digits) to the call being recorded whose
// recorded call ID is callID, for c of the same care provider: the patient
// is kept with the session (sealed in its spool) and stored with the
// recording. ok is false when no such call is being recorded.
func (s *Server) LinkActive(ctx context.Context, c archive.Caller, callID, patient string) (*archive.Link, bool, error) {
	if c.Principal == nil {
		return nil, false, nil
	}
	s.mu.Lock()
	var found *session
	for _, m := range []map[string]*session{s.sessions, s.ending} {
		for _, ss := range m {
			ss.mu.Lock()
			match := ss.meta.CallID == callID
			ss.mu.Unlock()
			if match && ss.caller.Principal.CareProvider == c.Principal.CareProvider {
				found = ss
			}
		}
	}
	s.mu.Unlock()
	if found == nil {
		return nil, false, nil
	}
	found.mu.Lock()
	ended := found.ended
	replaced := found.meta.Patient != "" && found.meta.Patient != patient
	found.mu.Unlock()
	if ended {
		// Between BYE and stored: neither the session nor the catalog can
		// take the patient now; the caller retries in a moment.
		return nil, true, archive.ErrBusy
	}
	detail := "target=recording"
	if replaced {
		detail += " replaces=yes"
	}
	if err := s.arc.AuthorizeLink(ctx, c, found.caller.Principal.CareProvider, found.source.CareUnit, found.id, patient, detail); err != nil {
		return nil, true, err
	}
	found.mu.Lock()
	defer found.mu.Unlock()
	if found.ended {
		// Ended while the decision was audited: the audited link is
		// repeated by the caller's retry against the stored recording.
		return nil, true, archive.ErrBusy
	}
	found.meta.Patient = patient
	found.saveMeta(&found.meta)
	return &archive.Link{RecordingID: found.id, State: "recording", Replaced: replaced}, true, nil
}

// portAllocator hands out blocks of even RTP ports.
type portAllocator struct {
	host     string
	min, max int
	mu       sync.Mutex
	next     int
	used     map[int]bool
}

func newPortAllocator(host string, min, max int) *portAllocator {
	min += min & 1
	return &portAllocator{host: host, min: min, max: max, next: min, used: map[int]bool{}}
}

// allocate binds n UDP sockets at base, base+2, … and returns them.
func (a *portAllocator) allocate(n int) ([]*net.UDPConn, int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	span := a.max - a.min + 1
	for tries := 0; tries < span/2; tries++ {
		base := a.next
		a.next += 2
		if a.next+2*n > a.max {
			a.next = a.min
		}
		if base+2*n-1 > a.max {
			continue
		}
		conns, ok := a.bind(base, n)
		if ok {
			return conns, base, nil
		}
	}
	return nil, 0, errors.New("siprec: no free RTP ports")
}

func (a *portAllocator) bind(base, n int) ([]*net.UDPConn, bool) {
	var conns []*net.UDPConn
	for k := 0; k < n; k++ {
		p := base + 2*k
		if a.used[p] {
			break
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(mustAddr(a.host), uint16(p))))
		if err != nil {
			break
		}
		c.SetReadBuffer(1 << 20)
		conns = append(conns, c)
	}
	if len(conns) != n {
		for _, c := range conns {
			c.Close()
		}
		return nil, false
	}
	for k := 0; k < n; k++ {
		a.used[base+2*k] = true
	}
	return conns, true
}

func (a *portAllocator) release(legs []*leg) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range legs {
		if l != nil {
			delete(a.used, l.port)
		}
	}
}

func mustAddr(host string) netip.Addr {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a
}

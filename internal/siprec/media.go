package siprec

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"

	"callvault/internal/rtpmix"
)

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

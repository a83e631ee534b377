package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"callvault/internal/config"
	"callvault/internal/siprec"
)

// sipService is the running SIPREC recording server and its sockets.
type sipService struct {
	srv     *siprec.Server
	udp     net.PacketConn
	tcp     net.Listener
	tls     net.Listener
	udpAddr string // host:port of UDP and TCP
	tlsAddr string
}

// startSIP creates the recording server of cfg.SIPRec, stores what a
// previous run left in its spool as incomplete recordings, and starts
// serving. It returns nil, nil when SIPREC is not configured.
func startSIP(ctx context.Context, cfg *config.Config, st *stack, tlsCfg *tls.Config, logger *slog.Logger) (*sipService, error) {
	sc := cfg.SIPRec
	if !sc.Enabled() {
		return nil, nil
	}
	lo, hi, err := sc.Ports()
	if err != nil {
		return nil, err
	}
	var sources []siprec.Source
	for _, s := range sc.Sources {
		src := siprec.Source{HSAID: s.HSAID, CareUnit: s.CareUnit}
		for _, a := range s.Addresses {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return nil, fmt.Errorf("siprec source %s: %w", s.HSAID, err)
			}
			src.Addresses = append(src.Addresses, ip)
		}
		sources = append(sources, src)
	}
	rtpHost := sc.RTPHost
	if rtpHost == "" {
		addr := sc.Listen
		if addr == "" {
			addr = sc.ListenTLS
		}
		if rtpHost, _, err = net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("siprec listen address: %w", err)
		}
	}
	// The SDP answer names this address: a wildcard would tell the
	// recording client to send media nowhere, and every call would be
	// stored as silence.
	if ip, err := netip.ParseAddr(rtpHost); err != nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("siprec: set siprec.rtp_host to this host's unicast IP address (the SIP listen host %q cannot be named in SDP)", rtpHost)
	}
	srv, err := siprec.New(siprec.Config{Archive: st.arc, Directory: st.dir, Keys: st.live,
		SpoolDir: filepath.Join(cfg.DataDir, "spool"), Sources: sources, TLS: tlsCfg, RTPHost: rtpHost,
		PortMin: lo, PortMax: hi, MediaTimeout: time.Duration(sc.MediaTimeout), Logger: logger, Registerer: st.reg})
	if err != nil {
		return nil, err
	}
	n, err := srv.Recover(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		logger.Warn("siprec: calls interrupted by the last stop stored as incomplete", "count", n)
	}
	s := &sipService{srv: srv}
	if sc.Listen != "" {
		if s.udp, s.tcp, err = listenUDPAndTCP(sc.Listen); err != nil {
			return nil, err
		}
		s.udpAddr = s.udp.LocalAddr().String()
		go srv.ServeUDP(s.udp)
		go srv.ServeTCP(s.tcp)
	}
	if sc.ListenTLS != "" {
		if s.tls, err = net.Listen("tcp", sc.ListenTLS); err != nil {
			s.close()
			return nil, fmt.Errorf("siprec tls: %w", err)
		}
		s.tlsAddr = s.tls.Addr().String()
		go srv.ServeTLS(s.tls)
	}
	go srv.RunRetry(ctx, 30*time.Second)
	return s, nil
}

// describe is the startup line naming the SIP addresses.
func (s *sipService) describe() string {
	out := "siprec"
	if s.udpAddr != "" {
		out += " on sip:" + s.udpAddr + " (udp, tcp)"
	}
	if s.tlsAddr != "" {
		out += " sips:" + s.tlsAddr + " (tls)"
	}
	return out
}

func (s *sipService) close() {
	for _, c := range []interface{ Close() error }{s.udp, s.tcp, s.tls} {
		if c != nil {
			c.Close()
		}
	}
	s.srv.Close()
}

// listenUDPAndTCP listens on addr for SIP over UDP and TCP, on one port.
// With port 0 the kernel picks the UDP port, and TCP on the same number
// may be taken (an outgoing connection's ephemeral port, say): then both
// are given up and another port is tried, a few times.
func listenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("siprec: listen address: %w", err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	for i := 0; ; i++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("siprec udp: %w", err)
		}
		_, got, _ := net.SplitHostPort(udp.LocalAddr().String())
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, got))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if i+1 >= tries {
			return nil, nil, fmt.Errorf("siprec tcp: %w", err)
		}
	}
}

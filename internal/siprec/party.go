package siprec

import (
	"context"
	"strings"

	"callvault/internal/access"
	"callvault/internal/recording"
	"callvault/internal/rsmeta"
)

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
